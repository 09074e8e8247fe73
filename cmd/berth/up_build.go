package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/berth-dev/berth/scheduler"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/build"
	"github.com/berth-dev/berth/supervisor/image"
)

// ensureOptions say how ensureImages treats services with a build:
// section.
type ensureOptions struct {
	force    bool      // up --build: build every selected one
	noBuild  bool      // up --no-build: build none; fail when an image is missing
	progress io.Writer // build output; nil = none
	status   io.Writer // "Service X Built" lines; nil = none
}

// ensureImages builds, before the project goes to the daemon, the images
// of the services with a build: section that up brings up (services and,
// unless noDeps, their dependencies; every service when services is
// empty): always with force or pull_policy: build, else only those whose
// image is not stored yet. The CLI builds (not the daemon) because it is
// root and the image store locks itself against other processes.
//
// It returns p with every build: service's image set to the normalized
// name its image is stored under, selected or not, so the project the
// daemon saves runs those images later (restarts, boot restore) and the
// services' hashes do not depend on which were selected. p is not
// changed.
func ensureImages(ctx context.Context, g *globalOptions, p *spec.Project, services []string, noDeps bool, o ensureOptions) (*spec.Project, error) {
	var buildable []int
	for i := range p.Services {
		if p.Services[i].Build != nil {
			buildable = append(buildable, i)
		}
	}
	if len(buildable) == 0 {
		return p, nil
	}
	selected := services
	if len(services) > 0 && !noDeps {
		gr, err := scheduler.NewGraph(p)
		if err != nil {
			return nil, err
		}
		if selected, err = gr.WithDependencies(services); err != nil {
			return nil, err
		}
	}
	cp := *p
	cp.Services = slices.Clone(p.Services)
	var (
		b     *build.Builder
		store *image.Store
		done  = map[string]bool{} // refs built or checked by this up
	)
	for _, i := range buildable {
		svc := &cp.Services[i]
		name := build.ImageName(p, &p.Services[i])
		ref, err := image.NormalizeName(name)
		if err != nil {
			return nil, fmt.Errorf("service %q: image name %q: %w", svc.Name, name, err)
		}
		if len(selected) > 0 && !slices.Contains(selected, svc.Name) || done[ref] {
			svc.Image = ref
			continue
		}
		done[ref] = true
		if store == nil {
			if store, err = openImageStore(g); err != nil {
				return nil, err
			}
		}
		if o.noBuild {
			if _, err := store.Get(ref); errors.Is(err, image.ErrNotFound) {
				return nil, fmt.Errorf("service %q: image %s is not built and --no-build was given (run `berth up --build` or `berth build %s`)", svc.Name, name, svc.Name)
			} else if err != nil {
				return nil, fmt.Errorf("service %q: %w", svc.Name, err)
			}
			svc.Image = ref
			continue
		}
		if b == nil {
			if b, err = build.New(g.Root, store, nil); err != nil {
				return nil, err
			}
		}
		got, built, err := b.EnsureService(ctx, &cp, svc, build.ServiceOptions{Progress: o.progress}, o.force)
		if err != nil {
			return nil, fmt.Errorf("service %q: build: %w", svc.Name, err)
		}
		if built && o.status != nil {
			fmt.Fprintf(o.status, "Service %s Built: %s\n", svc.Name, got)
		}
		svc.Image = got
	}
	return &cp, nil
}
