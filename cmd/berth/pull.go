package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
)

func init() { register(newPullCmd) }

// pullOptions are `berth pull`'s flags, as `docker compose pull` has them.
type pullOptions struct {
	project         projectOptions
	policy          string
	quiet           bool
	ignoreFailures  bool
	ignoreBuildable bool
}

func newPullCmd(g *globalOptions) *cobra.Command {
	o := &pullOptions{}
	cmd := &cobra.Command{
		Use:   "pull [SERVICE...]",
		Short: "Pull the images of the project's services",
		Long: `Pull the image of every service (or of the services named), like
docker compose pull. Services whose pull_policy is "build", or that have a
build: section and --ignore-buildable is given, are skipped.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return runPull(ctx, g, o, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.project.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.policy, "policy", "", `pull "missing" images only, or "always" (default: always)`)
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print no progress")
	cmd.Flags().BoolVar(&o.ignoreFailures, "ignore-pull-failures", false, "pull what can be pulled and ignore the images that fail")
	cmd.Flags().BoolVar(&o.ignoreBuildable, "ignore-buildable", false, "skip services that have a build: section")
	return cmd
}

// pullTarget is one image to pull and the services that use it.
type pullTarget struct {
	ref      string
	platform string
	services []string
}

// pullTargets lists the images of services (all when empty), one entry a
// distinct image and platform, sorted by reference.
func pullTargets(p *spec.Project, services []string, ignoreBuildable bool) ([]pullTarget, error) {
	want := map[string]bool{}
	for _, s := range services {
		if _, ok := p.Service(s); !ok {
			return nil, fmt.Errorf("no such service: %q", s)
		}
		want[s] = true
	}
	byKey := map[string]*pullTarget{}
	for i := range p.Services {
		s := &p.Services[i]
		if len(want) > 0 && !want[s.Name] {
			continue
		}
		if s.Image == "" || s.PullPolicy == image.PullBuild || (s.Build != nil && ignoreBuildable) {
			continue
		}
		key := s.Image + "\x00" + s.Platform
		t := byKey[key]
		if t == nil {
			t = &pullTarget{ref: s.Image, platform: s.Platform}
			byKey[key] = t
		}
		t.services = append(t.services, s.Name)
	}
	out := make([]pullTarget, 0, len(byKey))
	for _, t := range byKey {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ref != out[j].ref {
			return out[i].ref < out[j].ref
		}
		return out[i].platform < out[j].platform
	})
	return out, nil
}

func runPull(ctx context.Context, g *globalOptions, o *pullOptions, services []string, stdout, stderr io.Writer) error {
	policy := image.PullAlways
	switch o.policy {
	case "", "always":
	case "missing", "if_not_present":
		policy = image.PullMissing
	default:
		return fmt.Errorf("--policy: unknown pull policy %q (want missing or always)", o.policy)
	}
	o.project.Stderr = stderr
	p, err := o.project.load(ctx, services)
	if err != nil {
		return err
	}
	targets, err := pullTargets(p, services, o.ignoreBuildable)
	if err != nil {
		return err
	}
	st, err := openImageStore(g)
	if err != nil {
		return err
	}
	var progress io.Writer = stdout
	if o.quiet {
		progress = nil
	}
	var errs *multierror.Error
	for _, t := range targets {
		_, err := st.Ensure(ctx, t.ref, policy, image.PullOptions{Platform: t.platform, Progress: progress})
		if err == nil {
			continue
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		err = fmt.Errorf("service %q: pull %s: %w", t.services[0], t.ref, err)
		if o.ignoreFailures {
			fmt.Fprintln(stderr, "berth: warning:", err)
			continue
		}
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}
