package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

// version is set at link time (-ldflags "-X main.version=v0.1.0"); builds
// without it report the module version or "dev".
var version = ""

type versionInfo struct {
	Version   string `json:"Version"`
	GoVersion string `json:"GoVersion"`
	Os        string `json:"Os"`
	Arch      string `json:"Arch"`
	Commit    string `json:"GitCommit,omitempty"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

func newVersionCmd(_ *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			switch format {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(v)
			case "", "pretty":
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "berth version %s (%s, %s/%s)\n", v.Version, v.GoVersion, v.Os, v.Arch)
				return err
			default:
				return fmt.Errorf("--format: unknown format %q (want pretty or json)", format)
			}
		},
	}
	cmd.Flags().StringVar(&format, "format", "pretty", "output format: pretty or json")
	return cmd
}
