package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
)

// Builder builds images into an image store. It is safe for concurrent
// use; builds share the layer cache.
type Builder struct {
	root  string // the berth root
	store *image.Store
	rt    *runtime.Runtime
	cache *cache
	tmp   string // <root>/build/tmp: diff tars and bundles in progress

	// NetUpstreams are the resolvers the embedded DNS server of the
	// default build network forwards to ("ip" or "ip:port"); nil means
	// the host's (netstack.HostUpstreams). Set it before the first
	// Build; tests point it at a stub server on loopback.
	NetUpstreams []string

	emptyOnce  sync.Once
	emptyLayer image.Layer
	emptyErr   error
}

// New returns a Builder that keeps its cache under root/build-cache and its
// work files under root/build. rt runs the RUN steps; nil makes a runtime
// with its state under root/build/runtime (so build containers never mix
// with a stack's).
func New(root string, store *image.Store, rt *runtime.Runtime) (*Builder, error) {
	if root == "" || store == nil {
		return nil, errors.New("build: root and image store are required")
	}
	if rt == nil {
		var err error
		if rt, err = runtime.New(filepath.Join(root, "build", "runtime")); err != nil {
			return nil, err
		}
	}
	b := &Builder{root: root, store: store, rt: rt, tmp: filepath.Join(root, "build", "tmp")}
	if err := os.MkdirAll(b.tmp, 0o700); err != nil {
		return nil, err
	}
	c, err := openCache(filepath.Join(root, "build-cache"))
	if err != nil {
		return nil, err
	}
	b.cache = c
	b.cleanStale()
	return b, nil
}

// deadPid reports whether the decimal pid names a process that no longer
// exists (never this process).
func deadPid(text string) bool {
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// cleanStale removes what builds of dead processes left behind (a build
// killed with SIGKILL): their rootfs mounts in the image store, their
// containers, their temp files (with the network namespaces of RUN steps)
// and their default networks. Ids carry the builder's pid, so builds of
// live processes are never touched.
func (b *Builder) cleanStale() {
	dead := func(name string) bool {
		parts := strings.Split(name, "-") // build-KIND-PID-RAND[-...]
		return len(parts) >= 4 && parts[0] == "build" && deadPid(parts[2])
	}
	if states, err := b.rt.List(); err == nil {
		for _, st := range states {
			if dead(st.ID) {
				if c, err := b.rt.Load(st.ID); err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					c.Delete(ctx, true)
					cancel()
				}
			}
		}
	}
	containers := filepath.Dir(filepath.Dir(b.store.UpperDir("x")))
	if ents, err := os.ReadDir(containers); err == nil {
		for _, e := range ents {
			if dead(e.Name()) {
				b.store.Release(e.Name())
			}
		}
	}
	if ents, err := os.ReadDir(b.tmp); err == nil {
		for _, e := range ents {
			if dead(e.Name()) {
				// A RUN bundle's netns file is a mount point: unmount it
				// first, or removing the bundle fails.
				netstack.RemoveNetNS(filepath.Join(b.tmp, e.Name(), "netns"))
				os.RemoveAll(filepath.Join(b.tmp, e.Name()))
			}
		}
	}
	b.cleanStaleNets()
}

// Options describe one build.
type Options struct {
	ContextDir       string            // the build context directory
	Dockerfile       string            // path (relative to ContextDir unless absolute); "" = Dockerfile
	DockerfileInline string            // Dockerfile text; wins over Dockerfile
	Args             map[string]string // --build-arg
	Target           string            // stage to build; "" = the last
	Labels           map[string]string // added to the image config
	Tags             []string          // name:tag references for the result
	NoCache          bool              // run every step
	Pull             bool              // pull base images even when present
	NamedContexts    map[string]string // additional_contexts: name -> dir or docker-image://ref
	ShmSize          int64             // /dev/shm of RUN steps, bytes; 0 = 64 MiB
	Network          string            // RUN network: ""/"default" = a bridge with outbound NAT, "host", "none"
	Progress         io.Writer         // plain progress output; nil = silent
}

// Result is a finished build.
type Result struct {
	Image  *image.Image
	Steps  int // steps that ran or were looked up
	Cached int // steps taken from the cache
}

// StepError is a failed build step: which one, its exit code (for RUN) and
// the last lines it printed.
type StepError struct {
	Step     string // e.g. "[build 2/5] RUN make"
	ExitCode int    // RUN's exit code; 0 when the step failed otherwise
	Tail     []string
	Err      error
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", e.Step)
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		fmt.Fprintf(&b, "did not complete successfully: exit code: %d", e.ExitCode)
	}
	if len(e.Tail) > 0 {
		b.WriteString("\n  output (last lines):")
		for _, l := range e.Tail {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// ServiceOptions are the command-line overrides for BuildService.
type ServiceOptions struct {
	NoCache  bool              // --no-cache (or build.no_cache)
	Pull     bool              // --pull (or build.pull)
	Args     map[string]string // --build-arg, over build.args
	Progress io.Writer
}

// ImageName is the name a service's built image gets: its image: when set,
// else PROJECT-SERVICE (as Compose names it).
func ImageName(p *spec.Project, svc *spec.Service) string {
	if svc.Image != "" {
		return svc.Image
	}
	return p.Name + "-" + svc.Name
}

// BuildService builds svc's build: section and tags the result with
// ImageName(p, svc) and build.tags. It returns the image reference to run
// (the normalized ImageName).
func (b *Builder) BuildService(ctx context.Context, p *spec.Project, svc *spec.Service, so ServiceOptions) (string, error) {
	if svc.Build == nil {
		return "", fmt.Errorf("service %q has no build section", svc.Name)
	}
	bd := svc.Build
	ctxDir := bd.Context
	if ctxDir == "" {
		ctxDir = p.WorkingDir
	} else if !filepath.IsAbs(ctxDir) && !strings.Contains(ctxDir, "://") {
		ctxDir = filepath.Join(p.WorkingDir, ctxDir)
	}
	args := map[string]string{}
	for k, v := range bd.Args {
		args[k] = v
	}
	for k, v := range so.Args {
		args[k] = v
	}
	name := ImageName(p, svc)
	opts := Options{
		ContextDir: ctxDir, Dockerfile: bd.Dockerfile, DockerfileInline: bd.DockerfileInline,
		Args: args, Target: bd.Target, Labels: bd.Labels,
		Tags:    append([]string{name}, bd.Tags...),
		NoCache: so.NoCache || bd.NoCache, Pull: so.Pull || bd.Pull,
		NamedContexts: bd.AdditionalContexts, ShmSize: bd.ShmSize, Network: bd.Network,
		Progress: so.Progress,
	}
	if _, err := b.Build(ctx, opts); err != nil {
		return "", fmt.Errorf("service %q: %w", svc.Name, err)
	}
	return image.NormalizeName(name)
}

// EnsureService returns the image reference svc runs, building it first
// when `up` would: always when force (up --build) or when its pull_policy is
// build, otherwise only when no image named ImageName(p, svc) is stored.
// built says whether a build ran.
func (b *Builder) EnsureService(ctx context.Context, p *spec.Project, svc *spec.Service, so ServiceOptions, force bool) (ref string, built bool, err error) {
	if svc.Build == nil {
		return "", false, fmt.Errorf("service %q has no build section", svc.Name)
	}
	if !force && svc.PullPolicy != image.PullBuild {
		if _, err := b.store.Get(ImageName(p, svc)); err == nil {
			ref, err := image.NormalizeName(ImageName(p, svc))
			return ref, false, err
		} else if !errors.Is(err, image.ErrNotFound) {
			return "", false, err
		}
	}
	ref, err = b.BuildService(ctx, p, svc, so)
	return ref, err == nil, err
}

// Build builds an image. Nothing is tagged unless every needed step
// succeeded.
func (b *Builder) Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.ContextDir == "" {
		return nil, errors.New("build: no context directory")
	}
	if strings.Contains(opts.ContextDir, "://") || strings.HasPrefix(opts.ContextDir, "git@") {
		return nil, fmt.Errorf("build context %s: remote contexts are %w (use a local directory)", opts.ContextDir, ErrNotSupported)
	}
	prog := newProgress(opts.Progress)
	dfPath := opts.Dockerfile
	if dfPath == "" {
		dfPath = "Dockerfile"
	}
	if !filepath.IsAbs(dfPath) {
		dfPath = filepath.Join(opts.ContextDir, dfPath)
	}
	v := prog.vertex("[internal] load build definition from " + filepath.Base(dfPath))
	src := []byte(opts.DockerfileInline)
	if opts.DockerfileInline == "" {
		var err error
		if src, err = os.ReadFile(dfPath); err != nil {
			v.fail(err)
			return nil, fmt.Errorf("read dockerfile: %w", err)
		}
	}
	df, err := parseDockerfile(src)
	if err != nil {
		v.fail(err)
		return nil, err
	}
	v.done()
	ctxSrc, err := newContextSource(opts.ContextDir, dfPath)
	if err != nil {
		return nil, err
	}
	meta, err := metaScope(df, opts.Args)
	if err != nil {
		return nil, err
	}
	stages, target, err := plan(df, meta, opts.Target)
	if err != nil {
		return nil, err
	}
	if opts.Network, err = buildNetworkMode(opts.Network); err != nil {
		return nil, err
	}
	run := &buildRun{
		b: b, opts: opts, df: df, meta: meta, ctxSrc: ctxSrc, prog: prog,
		outs: map[int]*stageOut{}, usedArgs: map[string]bool{}, byName: map[string]int{},
		net: newBuildNet(b.root, b.NetUpstreams),
	}
	defer func() {
		if err := run.net.close(); err != nil {
			prog.mu.Lock()
			fmt.Fprintf(prog.w, "WARNING: %v\n", err)
			prog.mu.Unlock()
		}
	}()
	for _, sp := range stages {
		run.outs[sp.index] = &stageOut{done: make(chan struct{})}
	}
	for i, st := range df.stages {
		if st.Name != "" {
			run.byName[strings.ToLower(st.Name)] = i
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, sp := range stages {
		g.Go(func() error {
			out := run.outs[sp.index]
			defer close(out.done)
			out.err = run.buildStage(gctx, sp)
			return out.err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var unused []string
	for k := range opts.Args {
		if !run.isUsed(k) {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	out := run.outs[target]
	v = prog.vertex("exporting to image")
	layers := out.layers
	if len(layers) == 0 {
		ly, err := b.empty(ctx)
		if err != nil {
			v.fail(err)
			return nil, err
		}
		layers = []image.Layer{ly}
	}
	cfg := out.cfg.DeepCopy()
	if len(out.layers) == 0 {
		cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: out.created}, Comment: "empty layer"})
	}
	if len(opts.Labels) > 0 && cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	for k, val := range opts.Labels {
		cfg.Config.Labels[k] = val
	}
	cfg.Created = v1.Time{Time: out.created}
	img, err := b.store.Commit(ctx, image.CommitOptions{Layers: layers, Config: cfg, Names: opts.Tags})
	if err != nil {
		v.fail(err)
		return nil, err
	}
	v.note("writing image %s", img.ID)
	for _, n := range img.Names {
		v.note("naming to %s", n)
	}
	v.done()
	if len(unused) > 0 {
		fmt.Fprintf(prog.w, "WARNING: build args not consumed: %s\n", strings.Join(unused, ", "))
	}
	return &Result{Image: img, Steps: run.steps, Cached: run.cached}, nil
}

// buildNetworkMode checks a build network (compose build.network) and
// returns it normalized: "" for the default bridge ("" or "default", so
// both give the same cache keys), "host" or "none". Named networks are not
// supported.
func buildNetworkMode(n string) (string, error) {
	switch n {
	case "", "default":
		return "", nil
	case "host", "none":
		return n, nil
	}
	return "", fmt.Errorf("build network %q: %w (default, host and none are)", n, ErrNotSupported)
}

// empty returns the store's empty layer (an empty tar), the lower layer of
// stages FROM scratch.
func (b *Builder) empty(ctx context.Context) (image.Layer, error) {
	b.emptyOnce.Do(func() {
		f, err := os.CreateTemp(b.tmp, newID("empty")+"-*")
		if err != nil {
			b.emptyErr = err
			return
		}
		defer os.Remove(f.Name())
		_, err = f.Write(make([]byte, 1024))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.emptyErr = err
			return
		}
		b.emptyLayer, b.emptyErr = b.store.AddLayer(ctx, f.Name())
	})
	if b.emptyErr == nil && !b.store.HasLayer(b.emptyLayer) {
		return b.store.AddLayer(ctx, b.emptyLayerPath())
	}
	return b.emptyLayer, b.emptyErr
}

func (b *Builder) emptyLayerPath() string {
	p := filepath.Join(b.tmp, "empty.tar")
	os.WriteFile(p, make([]byte, 1024), 0o600)
	return p
}

// newID returns a unique id for a build container or rootfs.
func newID(kind string) string {
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("build-%s-%d-%s", kind, os.Getpid(), hex.EncodeToString(r[:]))
}

// stageOut is a built stage, published to stages that read from it.
type stageOut struct {
	done    chan struct{}
	err     error
	layers  []image.Layer
	cfg     *v1.ConfigFile
	key     string
	created time.Time
}

// buildRun is one Build call.
type buildRun struct {
	b      *Builder
	opts   Options
	df     *dockerfile
	meta   *envMap
	ctxSrc *source
	prog   *progress
	byName map[string]int
	outs   map[int]*stageOut // written before the goroutines start
	net    *buildNet         // the default RUN network, made on first use

	mu       sync.Mutex // guards usedArgs, steps, cached
	usedArgs map[string]bool
	steps    int
	cached   int
}

func (r *buildRun) use(k string) {
	r.mu.Lock()
	r.usedArgs[k] = true
	r.mu.Unlock()
}

func (r *buildRun) isUsed(k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if proxyArgs[k] {
		return true
	}
	if r.usedArgs[k] {
		return true
	}
	for _, a := range r.df.metaArgs {
		for _, kv := range a.Args {
			if kv.Key == k {
				return true
			}
		}
	}
	return false
}

func (r *buildRun) count(cached bool) {
	r.mu.Lock()
	r.steps++
	if cached {
		r.cached++
	}
	r.mu.Unlock()
}

// wait returns the output of stage i once it is built.
func (r *buildRun) wait(ctx context.Context, i int) (*stageOut, error) {
	out, ok := r.outs[i]
	if !ok {
		return nil, fmt.Errorf("stage %d is not part of this build", i)
	}
	select {
	case <-out.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if out.err != nil {
		return nil, fmt.Errorf("stage %d failed", i)
	}
	return out, nil
}

// keyOf hashes the parts of a cache key.
func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cache is the layer cache index: one small JSON file per step key.
type cache struct{ dir string }

type cacheEntry struct {
	Layer   *image.Layer `json:"layer,omitempty"` // nil: the step changed nothing
	Created time.Time    `json:"created"`
}

func openCache(dir string) (*cache, error) {
	if err := os.MkdirAll(filepath.Join(dir, "index"), 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "mounts"), 0o700); err != nil {
		return nil, err
	}
	return &cache{dir: dir}, nil
}

func (c *cache) get(key string) (cacheEntry, bool) {
	var e cacheEntry
	b, err := os.ReadFile(filepath.Join(c.dir, "index", key+".json"))
	if err != nil || json.Unmarshal(b, &e) != nil {
		return e, false
	}
	return e, true
}

func (c *cache) put(key string, e cacheEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p := filepath.Join(c.dir, "index", key+".json")
	tmp := p + "." + newID("c") + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// mountDir is the persistent directory of a RUN --mount=type=cache id.
func (c *cache) mountDir(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(c.dir, "mounts", hex.EncodeToString(sum[:8]))
}
