package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/netstack"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
	"github.com/berth-dev/berth/supervisor/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Create makes container number of svc (named ContainerName(p, svc,
// number)) without starting it: the image (pulled per pull_policy), its
// rootfs, volumes, network namespace and attachments, resolver files,
// bundle and runtime container, and its state file. On error everything
// made so far is undone.
func (e *Engine) Create(ctx context.Context, p *spec.Project, svc *spec.Service, number int) (*Instance, error) {
	return e.CreateWithOptions(ctx, p, svc, number, CreateOptions{})
}

// CreateOptions tune Engine.CreateWithOptions.
type CreateOptions struct {
	// RenewAnonVolumes gives the container fresh anonymous volumes
	// instead of those kept from its previous incarnation
	// (`up -V/--renew-anon-volumes`).
	RenewAnonVolumes bool
	// Stdin is the stdin of the container's first process (nil:
	// /dev/null; later starts always get /dev/null). The caller keeps
	// its copy.
	Stdin *os.File
	// ConsoleSize is the pty's size when the process starts, for a
	// service with tty (nil: the kernel's default).
	ConsoleSize *specs.Box
	// ConfigHash is the service's spec.ServiceHash when the caller
	// computed it already (empty: Create computes it).
	ConfigHash string
}

// CreateWithOptions is Create with options.
func (e *Engine) CreateWithOptions(ctx context.Context, p *spec.Project, svc *spec.Service, number int, o CreateOptions) (_ *Instance, retErr error) {
	if p == nil || svc == nil {
		return nil, errors.New("engine: Create needs a project and a service")
	}
	name := ContainerName(p, svc, number)
	if err := runtime.ValidateID(name); err != nil {
		return nil, fmt.Errorf("container name %q: %w", name, err)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("engine closed")
	}
	if _, ok := e.instances[name]; ok || e.creating[name] {
		e.mu.Unlock()
		return nil, fmt.Errorf("container %s: %w", name, ErrExist)
	}
	// Reserve the name while creating; the instance is listed once made.
	e.creating[name] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.creating, name)
		e.mu.Unlock()
	}()
	i := &Instance{e: e, name: name, project: p.Name, service: svc.Name, dir: e.containerDir(name), changed: make(chan struct{})}
	i.opMu.Lock()
	defer i.opMu.Unlock()

	var undo []func()
	defer func() {
		if retErr == nil {
			return
		}
		for k := len(undo) - 1; k >= 0; k-- {
			undo[k]()
		}
		retErr = fmt.Errorf("container %s: create: %w", name, retErr)
	}()

	if _, err := os.Lstat(e.statePath(name)); err == nil {
		return nil, fmt.Errorf("%w (state file %s exists: adopt or remove it)", ErrExist, e.statePath(name))
	}
	hash := o.ConfigHash
	if hash == "" {
		var err error
		if hash, err = spec.ServiceHash(p, svc.Name, os.ReadFile); err != nil {
			return nil, err
		}
	}
	img, err := e.resolveImage(ctx, svc)
	if err != nil {
		return nil, err
	}
	icfg, err := e.cfg.Images.Config(img)
	if err != nil {
		return nil, err
	}
	svcCopy := *svc
	if svcCopy.Healthcheck == nil {
		svcCopy.Healthcheck = healthFromImage(icfg.Healthcheck)
	}

	if err := os.MkdirAll(i.dir, 0o700); err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(i.dir) })
	rootfs, _, err := e.cfg.Images.PrepareContainer(name, img)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = e.cfg.Images.Release(name) })

	var inherited []specs.Mount
	for _, vf := range svc.VolumesFrom {
		src, err := e.volumesFromSource(p, vf)
		if err != nil {
			return nil, err
		}
		m, err := e.cfg.Volumes.InheritMounts(vf, src)
		if err != nil {
			return nil, err
		}
		inherited = append(inherited, m...)
	}
	mounts, _, err := e.cfg.Volumes.PrepareWithOptions(ctx, p, &svcCopy, name, rootfs,
		volumesPrepareOptions(icfg.Volumes, inherited, o.RenewAnonVolumes))
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = e.cfg.Volumes.Release(name) })

	st := &containerState{
		Service:    &svcCopy,
		ProjectDir: p.WorkingDir,
		Mounts:     mounts,
		Info: ContainerInfo{
			Name: name, Service: svc.Name, Project: p.Name, Number: number,
			ID: newID(), Image: svc.Image, ImageDigest: img.ID, ConfigHash: hash,
			State: StateCreated, CreatedAt: time.Now().UTC(),
		},
	}
	hostname := svc.Hostname
	if hostname == "" {
		hostname = st.Info.ID[:12]
	}
	netFiles, nsPath, err := e.setupNetwork(p, &svcCopy, name, hostname, st, &undo)
	if err != nil {
		return nil, err
	}
	allMounts := append(slices.Clone(mounts), netFiles...)
	oci, warnings, err := specconv.ToOCI(p, &svcCopy, specconv.Options{
		Image: specconv.ImageConfig{Entrypoint: icfg.Entrypoint, Cmd: icfg.Cmd, Env: icfg.Env,
			WorkingDir: icfg.WorkingDir, User: icfg.User, StopSignal: icfg.StopSignal},
		Rootfs:    rootfs,
		Hostname:  hostname,
		NetNSPath: nsPath,
		Mounts:    allMounts,
	})
	if err != nil {
		return nil, err
	}
	if st.OwnNetNS && oci.Linux != nil {
		// Workaround: see netstack.SetNetNSSysctls.
		net := map[string]string{}
		for k, v := range oci.Linux.Sysctl {
			if strings.HasPrefix(k, "net.") {
				net[k] = v
				delete(oci.Linux.Sysctl, k)
			}
		}
		if err := netstack.SetNetNSSysctls(st.NetNSPath, net); err != nil {
			return nil, err
		}
		st.NetSysctls = net
	}
	for _, w := range warnings {
		e.emit(Event{Project: p.Name, Service: svc.Name, Container: name, Action: "warning", Message: w})
	}
	if oci.Process != nil {
		st.Info.Command = slices.Clone(oci.Process.Args)
		if oci.Process.Terminal && o.ConsoleSize != nil {
			oci.Process.ConsoleSize = o.ConsoleSize
		}
	}
	st.StopSignal = oci.Annotations[specconv.AnnotationStopSignal]
	b, err := json.Marshal(oci)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(i.dir, "config.json"), b, false); err != nil {
		return nil, err
	}

	i.st = *st
	i.tracker = NewRestartTracker(svcCopy.Restart)
	i.uhTrack = NewRestartTracker(spec.RestartPolicy{Condition: "always"})
	if err := i.startLogs(); err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		e.logs.remove(i.ing)
		i.ing.close()
		i.lf.Close()
	})
	if _, err := i.createRuntime(ctx, oci, b, o.Stdin); err != nil {
		return nil, err
	}
	undo = append(undo, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = i.rc.Delete(dctx, true)
	})
	i.mu.Lock()
	err = i.saveLocked(true)
	i.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.instances[name] = i
	e.mu.Unlock()
	e.emit(Event{Project: p.Name, Service: svc.Name, Container: name, Action: "create", Status: StateCreated})
	return i, nil
}

// resolveImage finds the service's image, pulling it per pull_policy.
func (e *Engine) resolveImage(ctx context.Context, svc *spec.Service) (*image.Image, error) {
	if svc.Image == "" {
		if svc.Build != nil {
			return nil, fmt.Errorf("service %q has no image: its build: section was not built (run `berth up --build` or `berth build`)", svc.Name)
		}
		return nil, fmt.Errorf("service %q has no image", svc.Name)
	}
	img, err := e.cfg.Images.Get(svc.Image)
	missing := errors.Is(err, image.ErrNotFound)
	if err != nil && !missing {
		return nil, err
	}
	// An image built from a build: section is made by the CLI before up
	// (its name often exists nowhere else): it is never pulled here.
	if svc.Build != nil || svc.PullPolicy == "build" {
		if missing {
			return nil, fmt.Errorf("service %q: image %q is not built (run `berth up --build` or `berth build %s`): %w", svc.Name, svc.Image, svc.Name, err)
		}
		return img, nil
	}
	pull := false
	switch svc.PullPolicy {
	case "always":
		pull = true
	case "never":
		if missing {
			return nil, fmt.Errorf("image %q is not in the image store and pull_policy is never: %w", svc.Image, err)
		}
	case "", "missing", "if_not_present", "build":
		pull = missing
	default:
		return nil, fmt.Errorf("service %q: unknown pull_policy %q", svc.Name, svc.PullPolicy)
	}
	if !pull {
		return img, nil
	}
	e.emit(Event{Service: svc.Name, Action: "pull", Message: svc.Image})
	opts := e.cfg.PullOptions
	if svc.Platform != "" {
		opts.Platform = svc.Platform
	}
	pimg, perr := e.cfg.Images.Pull(ctx, svc.Image, opts)
	if perr != nil {
		return nil, fmt.Errorf("pulling image %q: %w", svc.Image, perr)
	}
	return pimg, nil
}

// volumesFromSource returns the mounts of the container a volumes_from
// entry names.
func (e *Engine) volumesFromSource(p *spec.Project, entry string) ([]specs.Mount, error) {
	target := ""
	if rest, ok := strings.CutPrefix(entry, "container:"); ok {
		target, _, _ = strings.Cut(rest, ":")
	} else {
		svcName, _, _ := strings.Cut(entry, ":")
		for _, in := range e.Instances(p.Name) {
			if in.service == svcName {
				target = in.name
				break
			}
		}
		if target == "" {
			return nil, fmt.Errorf("volumes_from %q: no container of service %q", entry, svcName)
		}
	}
	src, ok := e.Instance(target)
	if !ok {
		return nil, fmt.Errorf("volumes_from %q: no container %q", entry, target)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	return slices.Clone(src.st.Mounts), nil
}

// setupNetwork makes the container's network namespace per network_mode
// and its resolver files; it returns the bind mounts of those files and
// the NetNSPath for specconv.
func (e *Engine) setupNetwork(p *spec.Project, svc *spec.Service, name, hostname string, st *containerState, undo *[]func()) ([]specs.Mount, string, error) {
	dir := e.containerDir(name)
	fo := filesOptions(svc, name, hostname)
	st.Hostname = hostname
	mode := svc.NetworkMode
	var nsPath string
	bindFiles := []string{"resolv.conf", "hosts", "hostname"}
	switch {
	case mode == "" || mode == "bridge" || mode == "default":
		nsPath = e.netnsPath(name)
		if err := netstack.CreateNetNS(nsPath); err != nil {
			return nil, "", err
		}
		*undo = append(*undo, func() { _ = netstack.RemoveNetNS(nsPath) })
		st.NetMode, st.NetNSPath, st.OwnNetNS = netModeBridge, nsPath, true
		*undo = append(*undo, func() { _ = e.cfg.Net.DetachAll(name) })
		if err := e.attachAll(p.Name, svc, name, nsPath, &fo); err != nil {
			return nil, "", err
		}
	case mode == "none":
		nsPath = e.netnsPath(name)
		if err := netstack.CreateNetNS(nsPath); err != nil {
			return nil, "", err
		}
		*undo = append(*undo, func() { _ = netstack.RemoveNetNS(nsPath) })
		if err := netstack.LoopbackUp(nsPath); err != nil {
			return nil, "", err
		}
		st.NetMode, st.NetNSPath, st.OwnNetNS = netModeNone, nsPath, true
	case mode == "host":
		nsPath = specconv.NetHost
		st.NetMode = netModeHost
		bindFiles = []string{"resolv.conf"}
	case strings.HasPrefix(mode, "service:") || strings.HasPrefix(mode, "container:"):
		target, err := e.sharedNetTarget(p, mode)
		if err != nil {
			return nil, "", err
		}
		target.mu.Lock()
		tPath, tMode, tDir := target.st.NetNSPath, target.st.NetMode, target.dir
		target.mu.Unlock()
		if tMode == netModeHost {
			nsPath = specconv.NetHost
		} else {
			nsPath = tPath
		}
		st.NetMode, st.NetNSPath = netModeShared, nsPath
		// The files are the other container's: same addresses, same DNS.
		var mounts []specs.Mount
		for _, f := range []string{"resolv.conf", "hosts", "hostname"} {
			src := filepath.Join(tDir, f)
			if _, err := os.Stat(src); err == nil {
				mounts = append(mounts, bindFile(src, "/etc/"+f))
			}
		}
		return mounts, nsPath, nil
	default:
		return nil, "", fmt.Errorf("network_mode %q is not supported", mode)
	}
	files, err := netstack.ContainerFiles(fo)
	if err != nil {
		return nil, "", err
	}
	if err := files.WriteDir(dir); err != nil {
		return nil, "", err
	}
	var mounts []specs.Mount
	for _, f := range bindFiles {
		mounts = append(mounts, bindFile(filepath.Join(dir, f), "/etc/"+f))
	}
	return mounts, nsPath, nil
}

func filesOptions(svc *spec.Service, name, hostname string) netstack.FilesOptions {
	return netstack.FilesOptions{
		Hostname: hostname, Domainname: svc.Domainname, DNS: svc.DNS, Search: svc.DNSSearch,
		Options: svc.DNSOpt, ExtraHosts: svc.ExtraHosts, Names: []string{name},
	}
}

// attachAll connects the netns at nsPath to the service's networks, eth0
// first on the network of highest priority, and adds the addresses and
// DNS server to fo.
func (e *Engine) attachAll(project string, svc *spec.Service, name, nsPath string, fo *netstack.FilesOptions) error {
	nets := slices.Clone(svc.Networks)
	sort.SliceStable(nets, func(a, b int) bool { return nets[a].Priority > nets[b].Priority })
	for k, sn := range nets {
		o := netstack.AttachOptions{
			NetNSPath: nsPath, Container: name, Service: svc.Name, Hostname: svc.Hostname,
			Aliases: sn.Aliases, IfName: fmt.Sprintf("eth%d", k), MAC: sn.MacAddress, GwPriority: sn.GwPriority,
		}
		if o.MAC == "" && k == 0 {
			o.MAC = svc.MacAddress
		}
		if sn.IPv4Address != "" {
			a, err := netip.ParseAddr(sn.IPv4Address)
			if err != nil {
				return fmt.Errorf("network %q: ipv4_address %q: %w", sn.Name, sn.IPv4Address, err)
			}
			o.IPv4 = a
		}
		a, err := e.cfg.Net.Attach(netstack.NetworkID(project, sn.Name), o)
		if err != nil {
			return fmt.Errorf("network %q: %w", sn.Name, err)
		}
		if k == 0 {
			fo.DNSServer = a.DNS
		}
		fo.Addresses = append(fo.Addresses, a.Address.Addr())
		fo.Names = append(fo.Names, sn.Aliases...)
	}
	if len(nets) == 0 {
		return netstack.LoopbackUp(nsPath)
	}
	return nil
}

// renewNetNS makes the container's own netns again when its file is no
// longer a mounted namespace (after a host reboot): a new namespace,
// attached to the same networks, with new resolver files and sysctls.
func (e *Engine) renewNetNS(name, project string, st *containerState) error {
	if !st.OwnNetNS || st.NetNSPath == "" || netstack.IsNetNSMounted(st.NetNSPath) {
		return nil
	}
	path := st.NetNSPath
	if err := netstack.RemoveNetNS(path); err != nil {
		return err
	}
	if err := netstack.CreateNetNS(path); err != nil {
		return err
	}
	fo := filesOptions(st.Service, name, st.Hostname)
	switch st.NetMode {
	case netModeBridge:
		if err := e.cfg.Net.DetachAll(name); err != nil {
			return err
		}
		if err := e.attachAll(project, st.Service, name, path, &fo); err != nil {
			return err
		}
	case netModeNone:
		if err := netstack.LoopbackUp(path); err != nil {
			return err
		}
	}
	files, err := netstack.ContainerFiles(fo)
	if err != nil {
		return err
	}
	if err := files.WriteDir(e.containerDir(name)); err != nil {
		return err
	}
	return netstack.SetNetNSSysctls(path, st.NetSysctls)
}

func bindFile(src, dst string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "rw"}}
}

// sharedNetTarget finds the container whose network namespace
// network_mode service:X / container:X joins.
func (e *Engine) sharedNetTarget(p *spec.Project, mode string) (*Instance, error) {
	if name, ok := strings.CutPrefix(mode, "container:"); ok {
		in, found := e.Instance(name)
		if !found {
			return nil, fmt.Errorf("network_mode %q: no container %q", mode, name)
		}
		return in, nil
	}
	svcName := strings.TrimPrefix(mode, "service:")
	var cands []*Instance
	for _, in := range e.Instances(p.Name) {
		if in.service == svcName {
			cands = append(cands, in)
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("network_mode %q: service %q has no container", mode, svcName)
	}
	return cands[0], nil
}

// teardown undoes Create from the saved state alone: runtime container,
// attachments and ports, volumes, rootfs, netns file.
// rc, when not nil, is the engine's handle on the runtime container: if it
// is the init's parent it reaps it.
func (e *Engine) teardown(ctx context.Context, name string, st *containerState, rc *runtime.Container, removeVolumes bool) error {
	var errs []error
	if rc != nil {
		if err := rc.Delete(ctx, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if c, err := e.cfg.Runtime.Load(name); err == nil {
		if err := c.Delete(ctx, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, runtime.ErrNotExist) {
		errs = append(errs, err)
	}
	if st.NetMode == netModeBridge {
		e.cfg.Net.Unregister(name)
	}
	if st.OwnNetNS && st.NetNSPath != "" {
		// The veths go with the namespace (batched by the kernel, where
		// deleting each by hand costs a grace period under RTNL); wait
		// for them so that nothing is left when teardown returns.
		links, err := e.cfg.Net.DetachAllKeepLinks(name)
		if err != nil {
			errs = append(errs, err)
		}
		wait := 5 * time.Second
		if err := netstack.RemoveNetNS(st.NetNSPath); err != nil {
			errs = append(errs, err)
			wait = 0 // the namespace stays: delete the veths now
		}
		if err := netstack.WaitLinksGone(links, wait); err != nil {
			errs = append(errs, err)
		}
	} else if err := e.cfg.Net.DetachAll(name); err != nil {
		errs = append(errs, err)
	}
	if err := e.cfg.Volumes.Release(name); err != nil {
		errs = append(errs, err)
	}
	if removeVolumes {
		if _, err := e.cfg.Volumes.RemoveAnonymous(st.Info.Project, name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.cfg.Images.Release(name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
