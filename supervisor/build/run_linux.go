package build

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime"
)

// runStep runs a RUN instruction in a container over the stage's layers.
func (r *buildRun) runStep(ctx context.Context, st *stageState, c *instructions.RunCommand, name string) error {
	if sec := instructions.GetSecurity(c); sec == instructions.SecurityInsecure {
		return fmt.Errorf("RUN --security=insecure: %w", ErrNotSupported)
	}
	network := r.opts.Network
	if n := instructions.GetNetwork(c); n != "" && n != instructions.NetworkDefault {
		network = n
	}
	wd := st.cfg.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	var mounts []*instructions.Mount
	var binds []specs.Mount
	var bindKeys []string
	var releases []func()
	defer func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}()
	for _, m := range instructions.GetMounts(c) {
		switch m.Type {
		case instructions.MountTypeCache, instructions.MountTypeTmpfs:
			mounts = append(mounts, m)
		case instructions.MountTypeBind:
			bm, key, err := r.bindMount(ctx, m, wd, &releases)
			if err != nil {
				return err
			}
			binds = append(binds, bm)
			bindKeys = append(bindKeys, key)
		default:
			return fmt.Errorf("RUN --mount=type=%s: %w (bind, cache and tmpfs are)", m.Type, ErrNotSupported)
		}
	}
	args, err := st.runArgs(c)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return errors.New("RUN: empty command")
	}
	// The environment: image ENV, then the stage's ARGs that ENV does not
	// set, then proxy build args; PATH defaults like Docker's.
	env := append([]string(nil), st.cfg.Config.Env...)
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var argKV []string
	for _, k := range st.args.keys {
		argKV = append(argKV, k+"="+st.args.vals[k])
		if !set[k] {
			env = append(env, k+"="+st.args.vals[k])
			set[k] = true
		}
	}
	for k, v := range r.opts.Args {
		if proxyArgs[k] && !set[k] {
			env = append(env, k+"="+v)
			r.use(k)
		}
	}
	if !set["PATH"] {
		env = append(env, defaultPath)
	}
	user := st.cfg.Config.User
	mountKey, _ := json.Marshal(mounts)
	sort.Strings(argKV)
	key := keyOf(st.key, "RUN", jsonText(args), strings.Join(argKV, "\x00"), string(mountKey), strings.Join(bindKeys, "\x00"), network, wd, user)
	var lw *lineWriter
	err = r.fsStep(ctx, st, name, key, func(rootfs string, v *vertex) error {
		lw = &lineWriter{v: v, max: 12}
		code, err := r.b.runContainer(ctx, rootfs, runSpec{
			args: args, env: env, cwd: wd, user: user, network: network, net: r.net,
			shmSize: r.opts.ShmSize, mounts: mounts, binds: binds, out: lw,
		}, r.b.cache)
		lw.flush()
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitError{code: code}
		}
		return nil
	})
	var ee *exitError
	if errors.As(err, &ee) {
		var tail []string
		if lw != nil {
			tail = lw.tail
		}
		return &StepError{Step: name, ExitCode: ee.code, Tail: tail}
	}
	return err
}

type exitError struct{ code int }

func (e *exitError) Error() string {
	return "process did not complete successfully: exit code: " + strconv.Itoa(e.code)
}

// runHostname is the hostname of RUN containers, as in BuildKit.
const runHostname = "buildkitsandbox"

// runContainer runs one RUN step in rootfs and returns its exit code. Mount
// points it had to create for the run (/proc, /dev, /sys, /etc/resolv.conf,
// /etc/hosts, cache targets) are removed again so they do not end up in the
// layer.
//
// The network: "none" keeps the spec's new, empty namespace; "host" shares
// the host's, with its resolv.conf and hosts; "" joins a namespace of its
// own attached to the build's default network (rs.net).
func (b *Builder) runContainer(ctx context.Context, rootfs string, rs runSpec, c *cache) (int, error) {
	id := newID("run")
	if len(id) > 60 {
		id = id[:60]
	}
	bundle := filepath.Join(b.tmp, id)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(bundle)
	s := runtime.DefaultSpec(rootfs, rs.args...)
	s.Process.Env = rs.env
	s.Process.Cwd = rs.cwd
	s.Hostname = runHostname
	if rs.user != "" {
		s.Process.User.Username = rs.user
	}
	// netFiles are bound read-only over the rootfs's: destination -> host file.
	var netFiles map[string]string
	switch rs.network {
	case "none":
	case "host":
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		// The host's network namespace needs the host's resolver and
		// hosts files, as in Docker builds.
		netFiles = map[string]string{}
		for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
			if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
				netFiles[f] = f
			}
		}
	case "":
		if rs.net == nil {
			return 0, errors.New("build network: no default network for this run")
		}
		nsPath, files, undo, err := rs.net.attach(id, bundle)
		if err != nil {
			return 0, err
		}
		defer undo()
		joinNetNS(s, nsPath)
		netFiles = files
	default:
		return 0, fmt.Errorf("build network %q: %w", rs.network, ErrNotSupported)
	}
	if rs.shmSize > 0 {
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/dev/shm" {
				s.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(rs.shmSize, 10)}
			}
		}
	}
	// Mount points the runtime or we create are recorded (parents first)
	// and removed after the run, so they stay out of the layer.
	var made []string
	for _, d := range []string{"/proc", "/dev", "/sys"} {
		made = append(made, missingChain(rootfs, d)...)
	}
	for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
		if src, ok := netFiles[f]; ok {
			made = append(made, missingChain(rootfs, f)...)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: f, Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
		}
	}
	for _, m := range rs.binds {
		made = append(made, missingChain(rootfs, m.Destination)...)
		s.Mounts = append(s.Mounts, m)
	}
	for _, m := range rs.mounts {
		target := m.Target
		if !path.IsAbs(target) {
			target = path.Join(rs.cwd, target)
		}
		made = append(made, missingChain(rootfs, target)...)
		if err := mkdirAllIn(rootfs, target, nil); err != nil {
			return 0, err
		}
		switch m.Type {
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = target
			}
			dir := c.mountDir(id)
			if err := os.Mkdir(dir, 0o755); err == nil {
				uid, gid := 0, 0
				if m.UID != nil {
					uid = int(*m.UID)
				}
				if m.GID != nil {
					gid = int(*m.GID)
				}
				os.Chown(dir, uid, gid)
				if m.Mode != nil {
					os.Chmod(dir, os.FileMode(*m.Mode))
				}
			} else if !errors.Is(err, os.ErrExist) {
				return 0, err
			}
			opts := []string{"rbind", "rw"}
			if m.ReadOnly {
				opts = []string{"rbind", "ro"}
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: target, Type: "bind", Source: dir, Options: opts})
		case instructions.MountTypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.SizeLimit > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		}
	}
	if rs.cwd != "/" {
		if err := mkdirAllIn(rootfs, rs.cwd, nil); err != nil {
			return 0, err
		}
	}
	defer func() {
		// Children first: remove what this run created, if still empty.
		for i := len(made) - 1; i >= 0; i-- {
			if p, err := runtime.ResolveInRoot(rootfs, made[i]); err == nil && p != rootfs {
				os.Remove(p)
			}
		}
	}()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				rs.out.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { pw.Close(); <-copied; pr.Close() }()
	ctr, err := b.rt.Create(ctx, id, runtime.CreateOpts{Bundle: bundle, Spec: s, IO: runtime.IO{Stdout: pw, Stderr: pw}})
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled while the container was being made: that, not
			// the half-made container, is what went wrong.
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("create build container: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctr.Delete(dctx, true)
	}()
	if err := ctr.Start(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("start build container: %w", err)
	}
	// Kill the step when the build is cancelled; Wait then returns.
	stop := context.AfterFunc(ctx, func() { ctr.Kill(9) })
	defer stop()
	st, err := ctr.Wait(context.Background())
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return st.Code, nil
}

// missingChain lists p and those of its parents that do not exist in
// rootfs, outermost first.
func missingChain(rootfs, p string) []string {
	var out []string
	for d := path.Clean(p); d != "/" && d != "."; d = path.Dir(d) {
		full, err := runtime.ResolveInRoot(rootfs, d)
		if err != nil {
			break
		}
		if _, err := os.Lstat(full); err == nil {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
}

// bindMount resolves RUN --mount=type=bind: its source in the context (or
// from=) as a read-only bind, and a cache key part hashing what it shows.
// A context directory with .dockerignore patterns is first copied without
// the ignored files, so the step sees what COPY would.
func (r *buildRun) bindMount(ctx context.Context, m *instructions.Mount, wd string, releases *[]func()) (specs.Mount, string, error) {
	if !m.ReadOnly {
		return specs.Mount{}, "", fmt.Errorf("RUN --mount=type=bind,rw: %w (bind mounts are read-only)", ErrNotSupported)
	}
	src, release, err := r.copySource(ctx, m.From)
	if err != nil {
		return specs.Mount{}, "", err
	}
	*releases = append(*releases, release)
	rel := strings.TrimPrefix(path.Clean("/"+m.Source), "/")
	if rel == "" {
		rel = "."
	}
	if src.ignored(rel) {
		return specs.Mount{}, "", fmt.Errorf("--mount source %q: excluded by .dockerignore", m.Source)
	}
	real, err := src.follow(rel)
	if err != nil {
		return specs.Mount{}, "", fmt.Errorf("--mount source %q: %w", m.Source, err)
	}
	h := sha256.New()
	if err := src.hashSources(h, []string{real}); err != nil {
		return specs.Mount{}, "", err
	}
	host := filepath.Join(src.dir, real)
	fi, err := os.Stat(host)
	if err != nil {
		return specs.Mount{}, "", err
	}
	if fi.IsDir() && src.ignore != nil {
		tmp, err := os.MkdirTemp(r.b.tmp, newID("bind")+"-*")
		if err != nil {
			return specs.Mount{}, "", err
		}
		*releases = append(*releases, func() { os.RemoveAll(tmp) })
		if err := copyInto(tmp, src, []string{real}, "/", true, copyOpts{}); err != nil {
			return specs.Mount{}, "", err
		}
		host = tmp
	}
	target := m.Target
	if !path.IsAbs(target) {
		target = path.Join(wd, target)
	}
	key := fmt.Sprintf("bind %s %s %s %x", m.From, real, target, h.Sum(nil))
	return specs.Mount{Destination: target, Type: "bind", Source: host, Options: []string{"rbind", "ro"}}, key, nil
}
