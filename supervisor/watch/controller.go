package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/build"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/supervisor/specconv"
)

// DaemonController is the Controller of a real stack: containers are
// found through the runtime (their rootfs, mounts and user come from the
// runtime state), exec runs through the runtime like `berth exec`, and
// restart, recreate and events go through the daemon API.
type DaemonController struct {
	project *spec.Project
	client  *api.Client
	rt      *runtime.Runtime
	builder *build.Builder // nil: services with build: cannot be rebuilt

	mu    sync.Mutex
	users map[string][2]int // container name + user -> uid, gid (guarded by mu)
}

// NewDaemonController returns a controller for project p. builder (may
// be nil) rebuilds services that have a build: section.
func NewDaemonController(p *spec.Project, client *api.Client, rt *runtime.Runtime, builder *build.Builder) *DaemonController {
	return &DaemonController{project: p, client: client, rt: rt, builder: builder, users: map[string][2]int{}}
}

// Targets lists the running containers of service (one-off run
// containers left out).
func (d *DaemonController) Targets(ctx context.Context, service string) ([]Target, error) {
	states, err := d.rt.List()
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, st := range states {
		if st.Annotations[specconv.AnnotationProject] != d.project.Name ||
			st.Annotations[specconv.AnnotationService] != service {
			continue
		}
		if strings.HasPrefix(st.ID, d.project.Name+"-"+service+"-run-") || st.Status != specs.StateRunning {
			continue
		}
		ct, err := d.rt.Load(st.ID)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", st.ID, err)
		}
		cfg, err := ct.Spec()
		if err != nil {
			return nil, err
		}
		t, err := d.target(&st, cfg)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", st.ID, err)
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	return out, nil
}

func (d *DaemonController) target(st *runtime.State, cfg *specs.Spec) (Target, error) {
	root := st.Rootfs
	if root == "" && cfg.Root != nil {
		root = cfg.Root.Path
	}
	t := Target{Container: st.ID, Root: root}
	if st.Pid > 0 {
		t.ProcRoot = "/proc/" + strconv.Itoa(st.Pid) + "/root"
	}
	for _, m := range cfg.Mounts {
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if bind {
			// A file bind (/etc/hosts, a config) is not a directory to
			// sync into; keep only directories.
			if fi, err := os.Stat(m.Source); err != nil || !fi.IsDir() {
				continue
			}
		}
		t.Mounts = append(t.Mounts, Mount{Destination: m.Destination, Source: m.Source, Bind: bind})
	}
	if cfg.Process != nil {
		u := cfg.Process.User
		t.UID, t.GID = int(u.UID), int(u.GID)
		if u.Username != "" {
			key := st.ID + "\x00" + u.Username
			d.mu.Lock()
			ids, ok := d.users[key]
			d.mu.Unlock()
			if !ok {
				uid, gid, err := runtime.UserInRoot(root, u.Username)
				if err != nil {
					return t, err
				}
				ids = [2]int{uid, gid}
				d.mu.Lock()
				d.users[key] = ids
				d.mu.Unlock()
			}
			t.UID, t.GID = ids[0], ids[1]
		}
	}
	return t, nil
}

// Restart restarts a container through the daemon.
func (d *DaemonController) Restart(ctx context.Context, container string) error {
	_, err := d.client.Container(ctx, container, api.ActionRestart, api.ContainerRequest{})
	return err
}

// Exec runs cmd in the container (as its user, in its working directory
// and environment) and waits for it.
func (d *DaemonController) Exec(ctx context.Context, container string, cmd []string, out io.Writer) error {
	ct, err := d.rt.Load(container)
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr)
		pr.Close()
	}()
	proc, err := ct.Exec(ctx, ct.ExecProcess(cmd...), runtime.ExecOpts{IO: runtime.IO{Stdout: pw, Stderr: pw}})
	pw.Close()
	if err != nil {
		<-copied
		return err
	}
	es, err := proc.Wait(ctx)
	<-copied
	if err != nil {
		return err
	}
	if es.Code != 0 {
		return fmt.Errorf("exit code %d", es.Code)
	}
	return nil
}

// Rebuild recreates the service with a fresh image: built again from its
// build: section (ErrNoBuilder without a builder), or re-pulled when it
// has none.
func (d *DaemonController) Rebuild(ctx context.Context, service string) error {
	svc, ok := d.project.Service(service)
	if !ok {
		return fmt.Errorf("no such service: %q", service)
	}
	p := d.project
	pull := "always"
	if svc.Build != nil {
		if d.builder == nil {
			return ErrNoBuilder
		}
		ref, err := d.builder.BuildService(ctx, p, svc, build.ServiceOptions{})
		if err != nil {
			return fmt.Errorf("build: %w", err)
		}
		// Run what was just built: the project with the service's image
		// set to it (spec.Project is immutable: change a copy), and no
		// pull of a name that only exists here.
		cp := *p
		cp.Services = slices.Clone(p.Services)
		for i := range cp.Services {
			if cp.Services[i].Name == service {
				cp.Services[i].Image = ref
			}
		}
		p, pull = &cp, "never"
	}
	res, err := d.client.Up(ctx, api.UpRequest{
		Project:  p,
		Services: []string{service},
		Options:  api.UpOptions{Detach: true, ForceRecreate: true, NoDeps: true, Pull: pull},
	}, nil)
	if err != nil {
		return err
	}
	return res.Err()
}

// Starts follows the daemon's events for the project and reports each
// container start (first start, restart by policy or by request). When
// the stream breaks (the daemon restarted), it connects again and
// reports every service with container "" (all of its containers).
func (d *DaemonController) Starts(ctx context.Context, fn func(service, container string)) error {
	fails := 0
	for {
		err := d.client.Events(ctx, d.project.Name, func(ev api.Event) error {
			fails = 0
			if (ev.Action == "start" || ev.Action == "restart") && ev.Status == "running" && ev.Container != "" {
				fn(ev.Service, ev.Container)
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		if fails++; fails > 30 {
			if err == nil {
				err = errors.New("the event stream keeps ending")
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		// Starts may have been missed meanwhile: sync every service's
		// containers again (unchanged files are skipped).
		for _, svc := range d.project.Services {
			fn(svc.Name, "")
		}
	}
}
