// Command berth is a declarative multi-container orchestrator: a Compose
// file goes in, a running stack comes out, with berth as its own
// container runtime.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// subcommands are added by each command's file through register, so that
// commands live beside each other without one file listing them all.
var subcommands []func(*globalOptions) *cobra.Command

func register(f func(*globalOptions) *cobra.Command) { subcommands = append(subcommands, f) }

// globalOptions are the flags every command shares.
type globalOptions struct {
	Root string // state directory: --root, BERTH_ROOT, /var/lib/berth
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run Compose stacks with berth's own container runtime",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defRoot := os.Getenv("BERTH_ROOT")
	if defRoot == "" {
		defRoot = "/var/lib/berth"
	}
	root.PersistentFlags().StringVar(&g.Root, "root", defRoot, "state directory (env BERTH_ROOT)")
	for _, f := range subcommands {
		root.AddCommand(f(g))
	}
	return root
}

func main() {
	root := newRootCmd()
	args, err := hoistProjectFlags(root, os.Args[1:])
	if err == nil {
		root.SetArgs(args)
		err = root.Execute()
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintln(os.Stderr, "berth:", ee.err)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}
