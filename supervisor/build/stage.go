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
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berth-dev/berth/supervisor/image"
)

// defaultPath is the PATH RUN steps get when the image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stageState is a stage being built.
type stageState struct {
	sp      *stagePlan
	layers  []image.Layer
	cfg     *v1.ConfigFile
	key     string
	created time.Time
	args    *envMap // ARGs declared in this stage that have a value
	shell   []string
	cmdSet  bool // CMD given in this stage (ENTRYPOINT then keeps it)
	total   int  // steps in the stage, FROM included
	step    int
}

// label is the "[name i/n]" prefix of a step.
func (st *stageState) label(single bool) string {
	if single {
		return fmt.Sprintf("[%d/%d]", st.step, st.total)
	}
	return fmt.Sprintf("[%s %d/%d]", st.sp.name, st.step, st.total)
}

// scope is the environment $VAR expansion sees: the stage's ARGs, then its
// ENV over them.
func (st *stageState) scope() *envMap {
	e := newEnvMap()
	for _, k := range st.args.keys {
		e.Set(k, st.args.vals[k])
	}
	for _, kv := range st.cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	return e
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func (r *buildRun) buildStage(ctx context.Context, sp *stagePlan) (retErr error) {
	st := &stageState{sp: sp, args: newEnvMap(), shell: []string{"/bin/sh", "-c"}, total: len(sp.stage.Commands) + 1, step: 1}
	single := len(r.df.stages) == 1
	out := r.outs[sp.index]
	// FROM
	v := r.prog.vertex(st.label(single) + " FROM " + sp.stage.BaseName)
	if err := r.from(ctx, st); err != nil {
		v.fail(err)
		return &StepError{Step: st.label(single) + " FROM " + sp.stage.BaseName, Err: err}
	}
	v.done()
	r.count(false)
	if len(st.cfg.Config.Shell) > 0 {
		st.shell = append([]string(nil), st.cfg.Config.Shell...)
	}
	for _, c := range sp.stage.Commands {
		st.step++
		name := st.label(single) + " " + cmdText(c)
		if err := r.command(ctx, st, c, name); err != nil {
			var se *StepError
			if errors.As(err, &se) {
				return err
			}
			return &StepError{Step: name, Err: err}
		}
	}
	out.layers, out.cfg, out.key, out.created = st.layers, st.cfg, st.key, st.created
	return nil
}

// from sets up the stage from its base: a stage, scratch or an image.
func (r *buildRun) from(ctx context.Context, st *stageState) error {
	sp := st.sp
	if sp.baseIdx >= 0 {
		base, err := r.wait(ctx, sp.baseIdx)
		if err != nil {
			return err
		}
		st.layers = append([]image.Layer(nil), base.layers...)
		st.cfg = base.cfg.DeepCopy()
		st.key = keyOf("stage", base.key)
		st.created = base.created
		return nil
	}
	if strings.EqualFold(sp.base, "scratch") {
		plat, _ := image.ParsePlatform(sp.platform)
		st.cfg = &v1.ConfigFile{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}
		st.cfg.Config.Env = []string{defaultPath} // as BuildKit gives scratch images
		st.key = keyOf("scratch", sp.platform)
		return nil
	}
	img, err := r.baseImage(ctx, sp.base, sp.platform)
	if err != nil {
		return err
	}
	raw, err := r.b.store.RawConfig(img)
	if err != nil {
		return err
	}
	cf, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return fmt.Errorf("image %s config: %w", sp.base, err)
	}
	st.cfg = cf
	st.layers = append([]image.Layer(nil), img.Layers...)
	// Keep history consistent with the layers (one non-empty entry per
	// layer), which some consumers of saved images check.
	nonEmpty := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(img.Layers) {
		cf.History = nil
		for range img.Layers {
			cf.History = append(cf.History, v1.History{Created: v1.Time{Time: img.Created}, Comment: "base layer"})
		}
	}
	st.key = keyOf("image", img.ID)
	st.created = img.Created
	if len(cf.Config.OnBuild) > 0 {
		fmt.Fprintf(r.prog.w, "WARNING: %s has ONBUILD triggers; running them is not supported, skipped\n", sp.base)
	}
	return nil
}

// baseImage finds (or pulls) a base image.
func (r *buildRun) baseImage(ctx context.Context, ref, platform string) (*image.Image, error) {
	if !r.opts.Pull {
		img, err := r.b.store.Get(ref)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, image.ErrNotFound) {
			return nil, err
		}
	}
	return r.b.store.Pull(ctx, ref, image.PullOptions{Platform: platform})
}

// command runs one instruction of a stage.
func (r *buildRun) command(ctx context.Context, st *stageState, c instructions.Command, name string) error {
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(expander(r.df.escape, st.scope())); err != nil {
			return err
		}
	}
	cfg := &st.cfg.Config
	meta := func(text string) error {
		st.key = keyOf(st.key, text)
		st.cfg.History = append(st.cfg.History, v1.History{Created: v1.Time{Time: st.created}, CreatedBy: cmdText(c), EmptyLayer: true, Comment: "berth build"})
		r.count(false)
		return nil
	}
	switch c := c.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		return meta("ENV " + strings.Join(parts, "\x00"))
	case *instructions.ArgCommand:
		var parts []string
		for _, kv := range c.Args {
			val, ok := r.argValue(st, kv)
			if ok {
				st.args.Set(kv.Key, val)
				parts = append(parts, kv.Key+"="+val)
			} else {
				parts = append(parts, kv.Key)
			}
		}
		return meta("ARG " + strings.Join(parts, "\x00"))
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		var parts []string
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		return meta("LABEL " + strings.Join(parts, "\x00"))
	case *instructions.UserCommand:
		cfg.User = c.User
		return meta("USER " + c.User)
	case *instructions.ExposeCommand:
		ports, err := expandPorts(c.Ports, expander(r.df.escape, st.scope()))
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
		return meta("EXPOSE " + strings.Join(ports, " "))
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, p := range c.Volumes {
			if p == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[p] = struct{}{}
		}
		return meta("VOLUME " + strings.Join(c.Volumes, "\x00"))
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		return meta("STOPSIGNAL " + c.Signal)
	case *instructions.CmdCommand:
		cfg.Cmd = st.cmdline(c.ShellDependantCmdLine)
		st.cmdSet = true
		return meta("CMD " + jsonText(cfg.Cmd))
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = st.cmdline(c.ShellDependantCmdLine)
		if !st.cmdSet {
			cfg.Cmd = nil
		}
		return meta("ENTRYPOINT " + jsonText(cfg.Entrypoint))
	case *instructions.ShellCommand:
		st.shell = append([]string(nil), c.Shell...)
		cfg.Shell = st.shell
		return meta("SHELL " + jsonText(c.Shell))
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		return meta("HEALTHCHECK " + jsonText(h))
	case *instructions.MaintainerCommand:
		st.cfg.Author = c.Maintainer
		return meta("MAINTAINER " + c.Maintainer)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		return meta("ONBUILD " + c.Expression)
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			wd = path.Join(base, wd)
		}
		wd = path.Clean(wd)
		cfg.WorkingDir = wd
		own := st.cfg.Config.User
		return r.fsStep(ctx, st, name, keyOf(st.key, "WORKDIR", wd, own), func(rootfs string, _ *vertex) error {
			return mkdirAllIn(rootfs, wd, nil)
		})
	case *instructions.RunCommand:
		return r.runStep(ctx, st, c, name)
	case *instructions.CopyCommand:
		return r.copyStep(ctx, st, c.SourcesAndDest, c.From, c.Chown, c.Chmod, false, c.Parents, c.ExcludePatterns, name)
	case *instructions.AddCommand:
		if c.Checksum != "" || c.KeepGitDir != nil {
			return fmt.Errorf("ADD --checksum/--keep-git-dir: %w", ErrNotSupported)
		}
		return r.copyStep(ctx, st, c.SourcesAndDest, "", c.Chown, c.Chmod, c.Unpack == nil || *c.Unpack, false, c.ExcludePatterns, name)
	default:
		return fmt.Errorf("%s: %w", c.Name(), ErrNotSupported)
	}
}

// argValue is the value an ARG gets: the build arg, else its default, else
// the global ARG of the same name, else a predefined platform arg.
func (r *buildRun) argValue(st *stageState, kv instructions.KeyValuePairOptional) (string, bool) {
	if v, ok := r.opts.Args[kv.Key]; ok {
		r.use(kv.Key)
		return v, true
	}
	if kv.Value != nil {
		return *kv.Value, true // already expanded by Expand
	}
	if v, ok := r.meta.Get(kv.Key); ok {
		return v, true
	}
	return "", false
}

// cmdline applies the shell to a shell-form command line.
func (st *stageState) cmdline(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string(nil), st.shell...), strings.Join(c.CmdLine, " "))
	}
	return append([]string(nil), c.CmdLine...)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// expandPorts normalizes EXPOSE values to port/proto, expanding ranges.
func expandPorts(in []string, exp instructions.SingleWordExpander) ([]string, error) {
	var out []string
	for _, p := range in {
		p, err := exp(p)
		if err != nil {
			return nil, err
		}
		port, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		lo, hi, isRange := strings.Cut(port, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b > 65535 {
			return nil, fmt.Errorf("EXPOSE %q: invalid port", p)
		}
		for n := a; n <= b; n++ {
			out = append(out, strconv.Itoa(n)+"/"+strings.ToLower(proto))
		}
	}
	return out, nil
}

// fsStep runs a step that changes the filesystem: from the cache when key
// has an entry whose layer is still stored, else by preparing an overlay
// over the stage's layers, calling do on its root, and storing the upper
// directory's changes as a new layer.
func (r *buildRun) fsStep(ctx context.Context, st *stageState, name, key string, do func(rootfs string, v *vertex) error) error {
	v := r.prog.vertex(name)
	apply := func(e cacheEntry) {
		if e.Layer != nil {
			st.layers = append(st.layers, *e.Layer)
			st.created = e.Created
		}
		st.key = key
		st.cfg.History = append(st.cfg.History, v1.History{Created: v1.Time{Time: e.Created}, CreatedBy: name[strings.Index(name, "] ")+2:], EmptyLayer: e.Layer == nil, Comment: "berth build"})
	}
	if !r.opts.NoCache {
		if e, ok := r.b.cache.get(key); ok && (e.Layer == nil || r.b.store.HasLayer(*e.Layer)) {
			apply(e)
			v.cached()
			r.count(true)
			return nil
		}
	}
	e, err := r.b.runFS(ctx, st.layers, func(rootfs string) error { return do(rootfs, v) })
	if err != nil {
		v.fail(err)
		return err
	}
	if err := r.b.cache.put(key, e); err != nil {
		v.fail(err)
		return err
	}
	apply(e)
	v.done()
	r.count(false)
	return nil
}

// runFS does one filesystem step on a fresh overlay and returns its layer
// (nil when nothing changed).
func (b *Builder) runFS(ctx context.Context, layers []image.Layer, do func(rootfs string) error) (cacheEntry, error) {
	lowers := layers
	if len(lowers) == 0 {
		ly, err := b.empty(ctx)
		if err != nil {
			return cacheEntry{}, err
		}
		lowers = []image.Layer{ly}
	}
	id := newID("fs")
	rootfs, cleanup, err := b.store.Prepare(id, &image.Image{ID: id, Layers: lowers})
	if err != nil {
		return cacheEntry{}, err
	}
	defer cleanup()
	if err := do(rootfs); err != nil {
		return cacheEntry{}, err
	}
	if err := b.store.Unmount(id); err != nil {
		return cacheEntry{}, err
	}
	f, err := os.CreateTemp(b.tmp, newID("diff")+"-*.tar")
	if err != nil {
		return cacheEntry{}, err
	}
	defer os.Remove(f.Name())
	n, err := writeDiff(b.store.UpperDir(id), f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cacheEntry{}, fmt.Errorf("collect layer: %w", err)
	}
	e := cacheEntry{Created: time.Now().UTC().Truncate(time.Second)}
	if n == 0 {
		return e, nil
	}
	ly, err := b.store.AddLayer(ctx, f.Name())
	if err != nil {
		return cacheEntry{}, err
	}
	e.Layer = &ly
	return e, nil
}

// copyStep runs COPY or ADD.
func (r *buildRun) copyStep(ctx context.Context, st *stageState, sd instructions.SourcesAndDest, from, chown, chmod string, unpack, parents bool, excludes []string, name string) error {
	if parents || len(excludes) > 0 {
		return fmt.Errorf("COPY --parents/--exclude: %w", ErrNotSupported)
	}
	if len(sd.SourceContents) > 0 {
		return fmt.Errorf("COPY/ADD heredocs: %w", ErrNotSupported)
	}
	for _, s := range sd.SourcePaths {
		if strings.Contains(s, "://") || strings.HasPrefix(s, "git@") {
			return fmt.Errorf("ADD %s: sources from URLs or git: %w (download the file into the build context instead)", s, ErrNotSupported)
		}
	}
	var mode *os.FileMode
	if chmod != "" {
		n, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || n > 0o7777 {
			return fmt.Errorf("--chmod=%s: only octal modes are supported", chmod)
		}
		m := os.FileMode(n & 0o777)
		if n&0o4000 != 0 {
			m |= os.ModeSetuid
		}
		if n&0o2000 != 0 {
			m |= os.ModeSetgid
		}
		if n&0o1000 != 0 {
			m |= os.ModeSticky
		}
		mode = &m
	}
	src, release, err := r.copySource(ctx, from)
	if err != nil {
		return err
	}
	defer release()
	var matches []string
	for _, s := range sd.SourcePaths {
		m, err := src.match(s)
		if err != nil {
			return err
		}
		matches = append(matches, m...)
	}
	dest := sd.DestPath
	destDir := strings.HasSuffix(dest, "/") || len(matches) > 1 || len(sd.SourcePaths) > 1 || dest == "."
	if !path.IsAbs(dest) {
		wd := st.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	h := sha256.New()
	if err := src.hashSources(h, matches); err != nil {
		return err
	}
	key := keyOf(st.key, "COPY", from, chown, chmod, strconv.FormatBool(unpack), dest, strconv.FormatBool(destDir), fmt.Sprintf("%x", h.Sum(nil)))
	return r.fsStep(ctx, st, name, key, func(rootfs string, _ *vertex) error {
		own, err := parseChown(rootfs, chown)
		if err != nil {
			return err
		}
		if unpack {
			var plain []string
			for _, m := range matches {
				p := filepath.Join(src.dir, m)
				if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && isArchive(p) {
					if err := unpackInto(rootfs, p, dest, own); err != nil {
						return err
					}
					continue
				}
				plain = append(plain, m)
			}
			matches = plain
			if len(matches) == 0 {
				return nil
			}
		}
		return copyInto(rootfs, src, matches, dest, destDir, copyOpts{own: own, mode: mode})
	})
}

// copySource opens what COPY reads: the context, a named context, an
// earlier stage or an image.
func (r *buildRun) copySource(ctx context.Context, from string) (*source, func(), error) {
	nop := func() {}
	if from == "" {
		return r.ctxSrc, nop, nil
	}
	if nc, ok := r.opts.NamedContexts[from]; ok {
		if ref, ok := strings.CutPrefix(nc, "docker-image://"); ok {
			img, err := r.baseImage(ctx, ref, "")
			if err != nil {
				return nil, nil, err
			}
			return r.mountLayers(ctx, img.Layers)
		}
		if strings.Contains(nc, "://") {
			return nil, nil, fmt.Errorf("additional context %s=%s: %w (directories and docker-image:// only)", from, nc, ErrNotSupported)
		}
		s, err := newContextSource(nc, "")
		return s, nop, err
	}
	if j, ok := stageRef(from, r.byName, len(r.df.stages)); ok {
		out, err := r.wait(ctx, j)
		if err != nil {
			return nil, nil, err
		}
		return r.mountLayers(ctx, out.layers)
	}
	img, err := r.baseImage(ctx, from, "")
	if err != nil {
		return nil, nil, fmt.Errorf("COPY --from=%s: %w", from, err)
	}
	return r.mountLayers(ctx, img.Layers)
}

// mountLayers mounts layers read-only-in-practice (an overlay nobody
// writes) as a COPY source; release unmounts it.
func (r *buildRun) mountLayers(ctx context.Context, layers []image.Layer) (*source, func(), error) {
	if len(layers) == 0 {
		ly, err := r.b.empty(ctx)
		if err != nil {
			return nil, nil, err
		}
		layers = []image.Layer{ly}
	}
	id := newID("src")
	rootfs, cleanup, err := r.b.store.Prepare(id, &image.Image{ID: id, Layers: layers})
	if err != nil {
		return nil, nil, err
	}
	return &source{dir: rootfs, keepOwner: true}, func() { cleanup() }, nil
}

// cmdText is an instruction's source text.
func cmdText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// owner is a uid/gid pair; nil means "keep the source's" or root.
type owner struct{ uid, gid int }

// copyOpts are a COPY's --chown and --chmod.
type copyOpts struct {
	own  *owner
	mode *os.FileMode
}
