package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
)

// This file holds what the Compose-level commands (up, down, ps, logs,
// start, stop...) share: finding the project, reaching the daemon, and
// picking containers by service.

// stack is what a command knows of its project: always the name, and the
// loaded project when stack files were found.
type stack struct {
	Name    string
	Project *spec.Project // nil when only -p was given and no stack file exists
}

// hasStackFiles reports whether load would find stack files: -f,
// COMPOSE_FILE, or one of the default names in the project directory (or
// the working directory) or a parent.
func (o *projectOptions) hasStackFiles() bool {
	if len(o.Files) > 0 || os.Getenv("COMPOSE_FILE") != "" {
		return true
	}
	dir := o.ProjectDir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return true // let load report it
	}
	for {
		for _, n := range spec.DefaultFileNames {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				return true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

var badNameChars = regexp.MustCompile(`[^a-z0-9_-]`)

// normalizeProjectName lowers a -p name and keeps [a-z0-9_-], as Compose
// does.
func normalizeProjectName(s string) string {
	s = badNameChars.ReplaceAllString(strings.ToLower(s), "")
	return strings.TrimLeft(s, "_-")
}

// resolve finds the project. Commands that only need its name (down, ps,
// logs, stop...) work without stack files when -p or COMPOSE_PROJECT_NAME
// names it, like Compose: the daemon has the project as last applied.
func (o *projectOptions) resolve(ctx context.Context, services []string) (*stack, error) {
	name := o.ProjectName
	if name == "" {
		name = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	if name != "" && !o.hasStackFiles() {
		n := normalizeProjectName(name)
		if n == "" {
			return nil, fmt.Errorf("invalid project name %q: use lower case letters, digits, '-' and '_'", name)
		}
		return &stack{Name: n}, nil
	}
	p, err := o.load(ctx, services)
	if err != nil {
		return nil, err
	}
	return &stack{Name: p.Name, Project: p}, nil
}

// checkServices reports services the project does not have, naming them.
func (s *stack) checkServices(services []string) error {
	if s.Project == nil {
		return nil
	}
	var missing []string
	for _, n := range services {
		if _, ok := s.Project.Service(n); !ok {
			missing = append(missing, n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("no such service: %q", missing[0])
	}
	return fmt.Errorf("no such services: %s", strings.Join(quoteAll(missing), ", "))
}

// resolveServices finds the project, as resolve does, and checks that it
// has every named service.
func (o *projectOptions) resolveServices(ctx context.Context, services []string) (*stack, error) {
	st, err := o.resolve(ctx, services)
	if err != nil {
		return nil, err
	}
	if err := st.checkServices(services); err != nil {
		return nil, err
	}
	return st, nil
}

// dialProject finds the project and checks its services (resolveServices),
// then dials the daemon. The caller closes the client.
func dialProject(ctx context.Context, g *globalOptions, po *projectOptions, services []string) (*stack, *api.Client, error) {
	st, err := po.resolveServices(ctx, services)
	if err != nil {
		return nil, nil, err
	}
	c, err := dial(g)
	if err != nil {
		return nil, nil, err
	}
	return st, c, nil
}

// serviceContainers asks the daemon for every container of project,
// stopped ones too, and returns those of services (see containersOf).
func serviceContainers(ctx context.Context, c *api.Client, project string, services []string) ([]api.ContainerSummary, error) {
	all, err := c.Ps(ctx, project, true)
	if err != nil {
		return nil, err
	}
	return containersOf(all, services)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// berthExecutable is the binary EnsureDaemon starts: this one. Tests of
// the in-process commands point it elsewhere.
var berthExecutable = os.Executable

// dial returns a client for the daemon of the root, starting the daemon
// when none answers.
func dial(g *globalOptions) (*api.Client, error) {
	root, err := filepath.Abs(g.Root)
	if err != nil {
		return nil, err
	}
	c, err := api.Dial(root)
	// A daemon that is (re)starting, e.g. the keeper's new daemon after a
	// crash, may reset the first connections: try again for a moment.
	for deadline := time.Now().Add(5 * time.Second); err != nil && transientDialError(err) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		c, err = api.Dial(root)
	}
	if err == nil || !errors.Is(err, api.ErrNoDaemon) {
		return c, err
	}
	exe, err := berthExecutable()
	if err != nil {
		return nil, fmt.Errorf("start the berth daemon: find the berth binary: %w", err)
	}
	return api.EnsureDaemon(root, exe)
}

// transientDialError tells the errors of a daemon caught starting up (a
// connection reset or closed early) from real failures.
func transientDialError(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// containersOf returns the containers of the given services (all when
// none is named), sorted. A named service without a container is an error
// naming it.
func containersOf(cs []api.ContainerSummary, services []string) ([]api.ContainerSummary, error) {
	sortContainers(cs)
	if len(services) == 0 {
		return cs, nil
	}
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	found := map[string]bool{}
	var out []api.ContainerSummary
	for _, c := range cs {
		if want[c.Service] {
			out = append(out, c)
			found[c.Service] = true
		}
	}
	for _, s := range services {
		if !found[s] {
			return nil, fmt.Errorf("service %q has no container", s)
		}
	}
	return out, nil
}

// containerByIndex picks replica index (1-based) of service, as
// `exec --index` does.
func containerByIndex(cs []api.ContainerSummary, service string, index int) (api.ContainerSummary, error) {
	var reps []api.ContainerSummary
	for _, c := range cs {
		if c.Service == service {
			reps = append(reps, c)
		}
	}
	if len(reps) == 0 {
		return api.ContainerSummary{}, fmt.Errorf("service %q has no container", service)
	}
	sortContainers(reps)
	for _, c := range reps {
		if c.Number == index {
			return c, nil
		}
	}
	if index == 1 && len(reps) == 1 {
		return reps[0], nil
	}
	return api.ContainerSummary{}, fmt.Errorf("service %q has no container with index %d", service, index)
}

// servicesIn lists the distinct services of cs, sorted.
func servicesIn(cs []api.ContainerSummary) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cs {
		if !seen[c.Service] {
			seen[c.Service] = true
			out = append(out, c.Service)
		}
	}
	sort.Strings(out)
	return out
}

// addProjectFlagsNoF adds the project flags without -f as a short form of
// --file, for commands whose own -f means something else (logs -f is
// --follow, rm -f is --force, as in Compose).
func addProjectFlagsNoF(fs *pflag.FlagSet, po *projectOptions) {
	tmp := pflag.NewFlagSet("project", pflag.ContinueOnError)
	po.addFlags(tmp)
	tmp.VisitAll(func(f *pflag.Flag) {
		if f.Shorthand == "f" {
			f.Shorthand = ""
		}
		fs.AddFlag(f)
	})
}

// secondsFlag is an optional number of seconds (-t/--timeout): unset
// means "each service's own setting", sent as nil.
type secondsFlag struct{ d *time.Duration }

func (s *secondsFlag) String() string {
	if s.d == nil {
		return ""
	}
	return strconv.Itoa(int(*s.d / time.Second))
}

func (s *secondsFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a number of seconds", v)
	}
	d := time.Duration(n) * time.Second
	s.d = &d
	return nil
}

func (s *secondsFlag) Type() string { return "seconds" }
