package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/spec"
)

func init() {
	// compose-go logs through logrus (unset variables, obsolete version:);
	// spec reports those as warnings of its own, printed below.
	logrus.SetOutput(io.Discard)
}

// projectOptions are Docker Compose's project-level flags, shared by every
// command that reads a stack (config, up, down, ps...).
type projectOptions struct {
	Files       []string
	ProjectName string
	ProjectDir  string
	EnvFiles    []string
	Profiles    []string

	// Stdin is read for -f -; Stderr gets the warnings. Nil means the
	// process's own.
	Stdin  io.Reader
	Stderr io.Writer

	warned map[string]bool // warnings already printed
}

func (o *projectOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.Files, "file", "f", nil, "stack file; repeat to merge (default: compose.yaml etc. here or in a parent directory, or COMPOSE_FILE)")
	fs.StringVarP(&o.ProjectName, "project-name", "p", "", "project name (default: COMPOSE_PROJECT_NAME, name: in the file, or the directory name)")
	fs.StringVar(&o.ProjectDir, "project-directory", "", "project directory (default: the first stack file's directory)")
	fs.StringArrayVar(&o.EnvFiles, "env-file", nil, "file of variables for interpolation; repeatable (default: .env in the project directory)")
	fs.StringArrayVar(&o.Profiles, "profile", nil, "enable a profile; repeatable (default: COMPOSE_PROFILES)")
}

func (o *projectOptions) loadOptions(services []string) spec.LoadOptions {
	stdin := o.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	return spec.LoadOptions{
		Files:       o.Files,
		ProjectDir:  o.ProjectDir,
		ProjectName: o.ProjectName,
		EnvFiles:    o.EnvFiles,
		Environ:     os.Environ(),
		Profiles:    o.Profiles,
		Services:    services,
		Stdin:       stdin,
	}
}

// load loads the project; services named on the command line are enabled
// even when their profiles are not. Warnings go to stderr, each once per
// process however often load is called.
func (o *projectOptions) load(ctx context.Context, services []string) (*spec.Project, error) {
	defer loadGC()()
	p, err := spec.Load(ctx, o.loadOptions(services))
	if err != nil {
		return nil, err
	}
	o.printWarnings(p.Warnings)
	return p, nil
}

// loadCompose is load that also returns compose-go's model, restricted to
// services and their dependencies when selectOnly is set.
func (o *projectOptions) loadCompose(ctx context.Context, services []string, selectOnly bool) (*spec.Project, *types.Project, error) {
	defer loadGC()()
	lo := o.loadOptions(services)
	lo.SelectServices = selectOnly
	p, cp, err := spec.LoadCompose(ctx, lo)
	if err != nil {
		return nil, nil, err
	}
	o.printWarnings(p.Warnings)
	return p, cp, nil
}

// loadGC runs the collector at 400% while a stack loads (call the
// result when it is done): loading a large stack allocates much and keeps
// little, and at the default 100% the collector took a quarter of the
// CPU `berth config` spends on 50 services. The user's GOGC wins.
func loadGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	prev := debug.SetGCPercent(400)
	return func() { debug.SetGCPercent(prev) }
}

func (o *projectOptions) printWarnings(ws []string) {
	w := o.Stderr
	if w == nil {
		w = os.Stderr
	}
	if o.warned == nil {
		o.warned = map[string]bool{}
	}
	for _, s := range ws {
		if !o.warned[s] {
			o.warned[s] = true
			fmt.Fprintln(w, "berth: warning:", s)
		}
	}
}
