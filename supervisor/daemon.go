package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/volumes"
)

// DaemonConfig configures a Daemon.
type DaemonConfig struct {
	// Root is the berth root. The daemon writes Root/berth.pid (locked
	// while it runs), listens on Root/berth.sock (0600) and keeps its
	// project state in Root/state/projects.
	Root string
	// Version is reported by /v1/ping.
	Version string
	// Logger receives the daemon's own log lines (nil: discarded).
	Logger *slog.Logger
	// Upstreams, when set, are the resolvers the embedded DNS servers
	// forward to (tests point them at a stub on loopback).
	Upstreams []string
	// Pool, when valid, is the address pool for automatic subnets
	// (default netstack.DefaultPool).
	Pool netip.Prefix
	// PullOptions are used when an image must be pulled.
	PullOptions image.PullOptions
	// NoBootRestore skips bringing back restart: always/unless-stopped
	// projects at Start.
	NoBootRestore bool
}

// ErrDaemonRunning: another daemon holds the root.
var ErrDaemonRunning = errors.New("a berth daemon already runs for this root")

// Daemon is `berth daemon`: the supervisor of one berth root. It owns the
// image store, volumes, networks, the runtime and the Engine, and serves
// the API of package api on the root's unix socket.
//
// Lifecycle: NewDaemon starts nothing; Start takes the root (pid file
// lock), restores networks, adopts the containers a previous daemon left,
// starts serving and, in the background, brings back the projects that
// should run; Close stops serving and the engine's goroutines, leaving
// every container running, and is idempotent.
type Daemon struct {
	cfg DaemonConfig
	log *slog.Logger

	images   *image.Store
	vols     *volumes.Manager
	net      *netstack.Manager
	rt       *runtime.Runtime
	engine   *Engine
	projects *projectStore
	bus      *eventBus

	started  time.Time
	lock     *os.File
	listener net.Listener
	srv      *http.Server
	// bg is cancelled by Close: it ends streaming requests and the boot
	// restore; bgWG waits for them.
	bg       context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	// bootDone is closed when the boot restore is over (or skipped).
	bootDone chan struct{}

	memMu    sync.Mutex
	memTimer *time.Timer // burst's pending FreeOSMemory
	bursts   int         // project-wide operations running
	gcPrev   int         // the GC percent before the first of them

	closeOnce sync.Once
	closeErr  error
	serveErr  chan error
}

// NewDaemon checks cfg. It starts nothing.
func NewDaemon(cfg DaemonConfig) (*Daemon, error) {
	if cfg.Root == "" {
		return nil, errors.New("daemon: Root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Root = root
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Daemon{cfg: cfg, log: log, bus: newEventBus(), bg: bg, bgCancel: cancel,
		serveErr: make(chan error, 1), bootDone: make(chan struct{})}, nil
}

// Engine returns the daemon's engine (nil before Start).
func (d *Daemon) Engine() *Engine { return d.engine }

// Start takes the root and starts serving. On error everything it did is
// undone.
func (d *Daemon) Start(ctx context.Context) (retErr error) {
	root := d.cfg.Root
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer func() {
		if retErr != nil {
			d.Close()
		}
	}()
	lock, err := lockFile(filepath.Join(root, "berth.pid"))
	if err != nil {
		if errors.Is(err, errAlreadyLocked) {
			return fmt.Errorf("%w (%s)", ErrDaemonRunning, filepath.Join(root, "berth.pid"))
		}
		return fmt.Errorf("daemon: %w", err)
	}
	d.lock = lock
	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d.started = time.Now().UTC()

	if d.images, err = image.Open(filepath.Join(root, "images")); err != nil {
		return fmt.Errorf("daemon: image store: %w", err)
	}
	if d.vols, err = volumes.NewForRoot(root); err != nil {
		return fmt.Errorf("daemon: volumes: %w", err)
	}
	if d.rt, err = runtime.New(filepath.Join(root, "runtime")); err != nil {
		return fmt.Errorf("daemon: runtime: %w", err)
	}
	if err := runtime.LoadInit(); err != nil {
		// Create reports it again, for each container.
		d.log.Warn("loading the container init", "err", err)
	}
	image.SpreadSubdirs(filepath.Join(root, "runtime"))
	if d.net, err = netstack.New(netstack.Config{Root: root, Upstreams: d.cfg.Upstreams, Pool: d.cfg.Pool}); err != nil {
		return fmt.Errorf("daemon: networks: %w", err)
	}
	if err := d.net.Restore(); err != nil {
		// A network that cannot be restored must not keep the others
		// (and the containers) from coming back.
		d.log.Warn("restoring networks", "err", err)
	}
	if d.projects, err = newProjectStore(root); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.engine, err = NewEngine(EngineConfig{
		Root: root, Images: d.images, Volumes: d.vols, Net: d.net, Runtime: d.rt,
		Events:      func(e Event) { d.bus.publish(apiEvent(e)) },
		PullOptions: d.cfg.PullOptions,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	adopted, err := d.engine.Adopt(ctx)
	if err != nil {
		d.log.Warn("adopting containers", "err", err)
	}
	d.log.Info("adopted containers", "count", len(adopted))
	pruneExitRecords(filepath.Join(root, "exits"), 24*time.Hour)

	l, err := listenSocket(filepath.Join(root, api.SocketName))
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	sock := l.Addr().String()
	d.listener = l
	d.srv = &http.Server{
		Handler:           d.Handler(),
		BaseContext:       func(net.Listener) context.Context { return d.bg },
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { d.serveErr <- d.srv.Serve(l) }()
	d.log.Info("listening", "socket", sock, "pid", os.Getpid())

	if d.cfg.NoBootRestore {
		close(d.bootDone)
	} else {
		d.bgWG.Add(1)
		go func() {
			defer d.bgWG.Done()
			defer close(d.bootDone)
			d.bootRestore(d.bg)
		}()
	}
	return nil
}

// Close stops serving and the engine's goroutines; containers keep
// running. It is idempotent.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		d.bgCancel()
		if d.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := d.srv.Shutdown(ctx); err != nil {
				d.srv.Close()
			}
			cancel()
		}
		d.bgWG.Wait()
		if d.engine != nil {
			errs = append(errs, d.engine.Close())
		}
		if d.net != nil {
			errs = append(errs, d.net.Close())
		}
		if d.listener != nil {
			_ = os.Remove(filepath.Join(d.cfg.Root, api.SocketName))
		}
		if d.lock != nil {
			_ = d.lock.Truncate(0)
			errs = append(errs, d.lock.Close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// Run starts the daemon and serves until ctx ends, then closes it.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-d.serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	return errors.Join(err, d.Close())
}

// listenSocket listens on the unix socket path with mode 0600. The socket
// is made in a private directory, restricted, then renamed into place, so
// that it is never reachable with looser permissions; a socket file left
// at path is stale (the caller holds the pid file lock) and is replaced.
func listenSocket(path string) (net.Listener, error) {
	// The directory is private, so nobody can connect to the socket
	// before it is restricted, whatever the umask.
	dir := filepath.Join(filepath.Dir(path), fmt.Sprintf(".sock-%d", os.Getpid()))
	_ = os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &namedListener{Listener: l, path: path}, nil
}

// namedListener reports the socket's final path as its address.
type namedListener struct {
	net.Listener
	path string
}

func (l *namedListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// pruneExitRecords removes keeper exit records older than age: Adopt has
// read every record of a container it knew, so old ones belong to
// processes that were not containers.
func pruneExitRecords(dir string, age time.Duration) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// burstGCPercent is the collector's target while project-wide
// operations run: they allocate much (projects, plans, specs, JSON) and
// keep little, and collecting at the default 100% cost a 50-service up
// about 3% of its CPU.
const burstGCPercent = 400

// burst marks a project-wide operation; call the returned func when it
// ends. While any runs the collector runs less often; one second after
// the last ends the heap goes back to the operating system: a daemon
// that supervises a stack for days should hold what its containers need,
// not what its busiest minute did.
func (d *Daemon) burst() (end func()) {
	d.memMu.Lock()
	d.bursts++
	if d.bursts == 1 {
		d.gcPrev = debug.SetGCPercent(burstGCPercent)
	}
	d.memMu.Unlock()
	return func() {
		d.memMu.Lock()
		defer d.memMu.Unlock()
		d.bursts--
		if d.bursts == 0 {
			debug.SetGCPercent(d.gcPrev)
		}
		if d.memTimer == nil {
			d.memTimer = time.AfterFunc(time.Second, debug.FreeOSMemory)
			return
		}
		d.memTimer.Reset(time.Second)
	}
}
