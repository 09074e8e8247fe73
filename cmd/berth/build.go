package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/build"
)

func init() { register(newBuildCmd) }

type buildOptions struct {
	project   projectOptions
	noCache   bool
	pull      bool
	quiet     bool
	buildArgs []string
}

func newBuildCmd(g *globalOptions) *cobra.Command {
	o := &buildOptions{}
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [SERVICE...]",
		Short: "Build or rebuild the images of services that have a build: section",
		Long: `Build the images of the stack's services that have a build: section (all of
them, or the ones named), from their Dockerfiles, with berth's own builder:
RUN steps run in berth containers and every step's result is a layer in
berth's image store. No daemon is needed.

Each image is tagged with the service's image: name, or PROJECT-SERVICE when
it has none, plus build.tags. Steps whose inputs did not change come from the
layer cache (shown as CACHED) unless --no-cache is given.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.project.Stdin = cmd.InOrStdin()
			o.project.Stderr = cmd.ErrOrStderr()
			return o.run(cmd, g, args)
		},
	}
	fs := cmd.Flags()
	o.project.addFlags(fs)
	fs.BoolVar(&o.noCache, "no-cache", false, "do not use the layer cache")
	fs.BoolVar(&o.pull, "pull", false, "always pull base images, even when present")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print no build output")
	fs.StringArrayVar(&o.buildArgs, "build-arg", nil, "KEY=VALUE build argument (KEY alone takes the value from the environment); repeatable")
	return cmd
}

// parseBuildArgs turns --build-arg values into a map; "KEY" alone takes
// the variable from the environment and is skipped when it is unset, as in
// Docker.
func parseBuildArgs(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range list {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want KEY=VALUE", a)
		}
		if !ok {
			var set bool
			if v, set = os.LookupEnv(k); !set {
				continue
			}
		}
		m[k] = v
	}
	return m, nil
}

func (o *buildOptions) run(cmd *cobra.Command, g *globalOptions, names []string) error {
	args, err := parseBuildArgs(o.buildArgs)
	if err != nil {
		return err
	}
	p, err := o.project.load(cmd.Context(), names)
	if err != nil {
		return err
	}
	selected := map[string]bool{}
	for _, n := range names {
		if _, ok := p.Service(n); !ok {
			return fmt.Errorf("no such service: %s", n)
		}
		selected[n] = true
	}
	st, err := openImageStore(g)
	if err != nil {
		return err
	}
	b, err := build.New(g.Root, st, nil)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	var progress io.Writer = cmd.ErrOrStderr()
	if o.quiet {
		progress = nil
	}
	built := 0
	for i := range p.Services {
		svc := &p.Services[i]
		if len(selected) > 0 && !selected[svc.Name] {
			continue
		}
		if svc.Build == nil {
			if selected[svc.Name] {
				fmt.Fprintf(cmd.ErrOrStderr(), "berth: service %q has no build section; nothing to build\n", svc.Name)
			}
			continue
		}
		ref, err := b.BuildService(ctx, p, svc, build.ServiceOptions{NoCache: o.noCache, Pull: o.pull, Args: args, Progress: progress})
		if err != nil {
			return err
		}
		built++
		if !o.quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "Service %s Built: %s\n", svc.Name, ref)
		}
	}
	if built == 0 && len(selected) == 0 && !o.quiet {
		fmt.Fprintln(cmd.ErrOrStderr(), "berth: no service has a build section")
	}
	return nil
}
