package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/spec"
)

func init() { register(newConfigCmd) }

type configOptions struct {
	project  projectOptions
	format   string
	quiet    bool
	services bool
	volumes  bool
	networks bool
	profiles bool
	images   bool
	hash     string
}

func newConfigCmd(_ *globalOptions) *cobra.Command {
	o := &configOptions{}
	cmd := &cobra.Command{
		Use:   "config [SERVICE...]",
		Short: "Validate the stack and print its normalized model",
		Long: `Load the stack like every other command (merging -f files, interpolating,
applying profiles) and print the result as Docker Compose's normalized model,
so that the output reads like "docker compose config" and can be fed back to
berth or to Compose. Naming services restricts the output to them and what
they depend on.

--format berth prints berth's own model instead (what the scheduler and
supervisor act on), as JSON.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.project.Stdin = cmd.InOrStdin()
			o.project.Stderr = cmd.ErrOrStderr()
			return o.run(cmd, args)
		},
	}
	fs := cmd.Flags()
	o.project.addFlags(fs)
	fs.StringVar(&o.format, "format", "yaml", "output format: yaml, json, or berth (berth's own model as JSON)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "only validate; print nothing")
	fs.BoolVar(&o.services, "services", false, "print the service names, one per line")
	fs.BoolVar(&o.volumes, "volumes", false, "print the volume names, one per line")
	fs.BoolVar(&o.networks, "networks", false, "print the network names, one per line")
	fs.BoolVar(&o.profiles, "profiles", false, "print the profile names, one per line")
	fs.BoolVar(&o.images, "images", false, "print the image names, one per line")
	fs.StringVar(&o.hash, "hash", "", `print "service hash" for the named services (comma-separated, or "*" for all)`)
	return cmd
}

func (o *configOptions) run(cmd *cobra.Command, args []string) error {
	switch o.format {
	case "yaml", "json", "berth":
	default:
		return fmt.Errorf("unknown --format %q (want yaml, json or berth)", o.format)
	}
	p, cp, err := o.project.loadCompose(cmd.Context(), args, len(args) > 0)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	switch {
	case o.quiet:
		return nil
	case o.services:
		return lines(out, serviceNames(p))
	case o.volumes:
		return lines(out, names(p.Volumes, func(v spec.Volume) string { return v.Name }))
	case o.networks:
		return lines(out, names(p.Networks, func(n spec.Network) string { return n.Name }))
	case o.profiles:
		return lines(out, p.Profiles)
	case o.images:
		var imgs []string
		for _, s := range p.Services {
			img := s.Image
			if img == "" {
				img = p.Name + "-" + s.Name // what Compose tags a built image
			}
			imgs = append(imgs, img)
		}
		return lines(out, imgs)
	case o.hash != "":
		return printHashes(out, p, o.hash)
	}
	var b []byte
	switch o.format {
	case "yaml":
		b, err = cp.MarshalYAML()
	case "json":
		b, err = cp.MarshalJSON()
	case "berth":
		b, err = marshalBerth(p)
	}
	if err != nil {
		return err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	_, err = out.Write(b)
	return err
}

func serviceNames(p *spec.Project) []string {
	return names(p.Services, func(s spec.Service) string { return s.Name })
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

func lines(w io.Writer, ss []string) error {
	for _, s := range ss {
		if _, err := fmt.Fprintln(w, s); err != nil {
			return err
		}
	}
	return nil
}

func printHashes(w io.Writer, p *spec.Project, which string) error {
	var want []string
	if which == "*" {
		want = serviceNames(p)
	} else {
		for _, s := range strings.Split(which, ",") {
			if s = strings.TrimSpace(s); s != "" {
				want = append(want, s)
			}
		}
		sort.Strings(want)
	}
	for _, name := range want {
		h, err := spec.ServiceHash(p, name, os.ReadFile)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s %s\n", name, h); err != nil {
			return err
		}
	}
	return nil
}

// marshalBerth prints berth's own model, warnings included.
func marshalBerth(p *spec.Project) ([]byte, error) {
	return json.MarshalIndent(struct {
		*spec.Project
		Warnings []string `json:"warnings,omitempty"`
	}{p, p.Warnings}, "", "  ")
}
