package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/spec"
)

// PrepareOptions are the inputs of Prepare beyond the service itself.
type PrepareOptions struct {
	// RenewAnonymous removes the container's anonymous volumes before
	// preparing, so it gets fresh ones (`up -V/--renew-anon-volumes`).
	RenewAnonymous bool
	// ImageVolumes are the image config's Volumes (container paths);
	// each one not covered by a service mount gets an anonymous volume.
	ImageVolumes []string
	// Inherited are mounts from volumes_from (see InheritMounts); a
	// service mount at the same target wins.
	Inherited []specs.Mount
}

// Prepare makes everything the container containerName of service svc
// mounts and returns the OCI mounts for the runtime, sorted so that a
// parent directory is mounted before what is mounted below it:
//
//   - bind mounts (source resolved, created if create_host_path);
//   - named volumes (created on first use, external ones must exist,
//     driver_opts devices mounted), with the image's content at the
//     target copied in once when the volume is empty, unless nocopy;
//   - anonymous volumes, keyed by project, container name and target so a
//     recreated container finds them again;
//   - tmpfs mounts (volumes: type tmpfs and tmpfs:);
//   - secrets and configs written as files and bound read-only.
//
// rootfs is the container's root filesystem (the image content to copy
// in, and where mountpoints are created, each resolved inside rootfs);
// with rootfs "" neither happens. On error nothing is left behind: volumes
// created here are removed, users and mounts added here are undone.
// release (idempotent) must be called once the container is deleted; it is
// Release(containerName), which the supervisor can also call after a crash.
func (m *Manager) Prepare(ctx context.Context, p *spec.Project, svc *spec.Service, containerName, rootfs string) ([]specs.Mount, func() error, error) {
	return m.PrepareWithOptions(ctx, p, svc, containerName, rootfs, PrepareOptions{})
}

// PrepareWithOptions is Prepare with options.
func (m *Manager) PrepareWithOptions(ctx context.Context, p *spec.Project, svc *spec.Service, containerName, rootfs string, o PrepareOptions) (_ []specs.Mount, _ func() error, retErr error) {
	if p == nil || svc == nil {
		return nil, nil, fmt.Errorf("%w: Prepare needs a project and a service", ErrInvalid)
	}
	if err := ValidateName(containerName); err != nil {
		return nil, nil, fmt.Errorf("container name: %w", err)
	}
	if rootfs != "" && !filepath.IsAbs(rootfs) {
		return nil, nil, fmt.Errorf("%w: rootfs %q must be absolute", ErrInvalid, rootfs)
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, nil, err
	}
	defer unlock()

	pr := &preparer{m: m, ctx: ctx, p: p, svc: svc, container: containerName, rootfs: rootfs, targets: map[string]bool{}}
	defer func() {
		if retErr != nil {
			pr.rollback()
			retErr = fmt.Errorf("service %q: %w", svc.Name, retErr)
		}
	}()
	if o.RenewAnonymous {
		if err := pr.renewAnonymousLocked(); err != nil {
			return nil, nil, err
		}
	}
	// Users are changed in memory and saved once at the end: on error they
	// are simply not saved.
	pr.users = m.loadUsersLocked()
	before := pr.users.clone()
	for i := range svc.Mounts {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if err := pr.serviceMount(&svc.Mounts[i]); err != nil {
			return nil, nil, err
		}
	}
	for _, iv := range o.ImageVolumes {
		t, err := CleanTarget(iv)
		if err != nil {
			return nil, nil, fmt.Errorf("image volume: %w", err)
		}
		if pr.targets[t] {
			continue
		}
		if err := pr.serviceMount(&spec.Mount{Type: spec.MountVolume, Target: t}); err != nil {
			return nil, nil, err
		}
	}
	for _, e := range svc.Tmpfs {
		mt, err := ParseTmpfs(e)
		if err != nil {
			return nil, nil, err
		}
		if err := pr.add(mt, true); err != nil {
			return nil, nil, err
		}
	}
	pr.undo = append(pr.undo, func() error { return os.RemoveAll(filepath.Join(m.filesDir, containerName)) })
	files, err := m.materializeFiles(p, svc, containerName)
	if err != nil {
		return nil, nil, err
	}
	for _, mt := range files {
		if err := pr.add(mt, false); err != nil {
			return nil, nil, err
		}
	}
	for _, mt := range o.Inherited {
		if pr.targets[mt.Destination] {
			continue
		}
		if err := pr.inherit(mt); err != nil {
			return nil, nil, err
		}
	}
	sort.SliceStable(pr.mounts, func(i, j int) bool {
		return depth(pr.mounts[i].Destination) < depth(pr.mounts[j].Destination)
	})
	out := make([]specs.Mount, len(pr.mounts))
	mps := make([]mountpoint, len(pr.mounts))
	for i, e := range pr.mounts {
		out[i] = e.Mount
		mps[i] = mountpoint{e.Destination, e.dir}
	}
	if rootfs != "" {
		if err := makeMountpoints(rootfs, mps); err != nil {
			return nil, nil, err
		}
	}
	// Most containers use no volume: their start then writes nothing.
	if !pr.users.equal(before) {
		if err := m.saveUsersLocked(pr.users); err != nil {
			return nil, nil, err
		}
	}
	return out, func() error { return m.Release(containerName) }, nil
}

func depth(p string) int { return strings.Count(p, "/") }

// preparer is the state of one Prepare call; the Manager's lock is held.
type preparer struct {
	m         *Manager
	ctx       context.Context
	p         *spec.Project
	svc       *spec.Service
	container string
	rootfs    string

	mounts  []prepMount
	users   userTable
	targets map[string]bool
	undo    []func() error // run in reverse on error
}

func (pr *preparer) rollback() {
	for i := len(pr.undo) - 1; i >= 0; i-- {
		_ = pr.undo[i]() // best effort: the first error is what the caller sees
	}
}

func (pr *preparer) add(mt specs.Mount, dir bool) error {
	if pr.targets[mt.Destination] {
		return fmt.Errorf("%w: two mounts at %s", ErrInvalid, mt.Destination)
	}
	pr.targets[mt.Destination] = true
	pr.mounts = append(pr.mounts, prepMount{mt, dir})
	return nil
}

// mountpoint is a mount target to create in the rootfs.
type mountpoint struct {
	target string
	dir    bool // a directory, else an empty file
}

type prepMount struct {
	specs.Mount
	dir bool // the mountpoint is a directory (else a file)
}

func (pr *preparer) serviceMount(sm *spec.Mount) error {
	target, err := CleanTarget(sm.Target)
	if err != nil {
		return err
	}
	switch sm.Type {
	case spec.MountBind:
		src, err := ResolveBindSource(sm.Source, pr.p.WorkingDir, sm.CreateHostPath)
		if err != nil {
			return err
		}
		opts, err := BindOptions(sm.ReadOnly, sm.Propagation)
		if err != nil {
			return err
		}
		st, err := os.Stat(src)
		if err != nil {
			return err
		}
		return pr.add(specs.Mount{Destination: target, Type: "bind", Source: src, Options: opts}, st.IsDir())
	case spec.MountTmpfs:
		mt, err := TmpfsMount(target, sm.TmpfsSize, sm.TmpfsMode, sm.ReadOnly)
		if err != nil {
			return err
		}
		return pr.add(mt, true)
	case spec.MountVolume:
		return pr.volume(sm, target)
	default:
		return fmt.Errorf("%w: mount type %q at %s", ErrInvalid, sm.Type, target)
	}
}

// volume prepares a named or anonymous volume mount.
func (pr *preparer) volume(sm *spec.Mount, target string) error {
	m := pr.m
	var name string
	var create CreateOptions
	external := false
	if sm.Source == "" {
		name = AnonymousName(pr.p.Name, pr.container, target)
		create = CreateOptions{Anonymous: true, Labels: map[string]string{
			LabelProject: pr.p.Name, LabelContainer: pr.container, LabelTarget: target, LabelAnonymous: "true",
		}}
	} else {
		var def *spec.Volume
		for i := range pr.p.Volumes {
			if pr.p.Volumes[i].Name == sm.Source {
				def = &pr.p.Volumes[i]
			}
		}
		if def == nil {
			return fmt.Errorf("%w: volume %q is not declared in the project's volumes", ErrInvalid, sm.Source)
		}
		var err error
		if name, err = VolumeName(pr.p, sm.Source); err != nil {
			return err
		}
		external = def.External
		create = CreateOptions{Driver: def.Driver, DriverOpts: def.DriverOpts, Labels: projectLabels(pr.p.Name, def.Name, def.Labels)}
	}
	sub, err := validateSubpath(sm.Subpath)
	if err != nil {
		return err
	}
	v, err := m.readMeta(name)
	switch {
	case errors.Is(err, ErrNotFound) && external:
		return fmt.Errorf("%w: external volume %q not found (create it with `berth volume create %s`)", ErrNotFound, name, name)
	case errors.Is(err, ErrNotFound):
		if v, err = m.createLocked(name, create); err != nil {
			return err
		}
		created := v
		pr.undo = append(pr.undo, func() error { return m.removeLocked(created) })
	case err != nil:
		return err
	}
	if err := pr.use(v); err != nil {
		return err
	}
	data := m.dataPath(name)
	if !sm.NoCopy && sub == "" && pr.rootfs != "" {
		if err := m.copyInLocked(pr.ctx, v, pr.rootfs, target); err != nil {
			return err
		}
	}
	src := data
	if sub != "" {
		if src, err = resolveSubpath(data, sub); err != nil {
			return err
		}
	}
	opts, err := BindOptions(sm.ReadOnly, "")
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return pr.add(specs.Mount{Destination: target, Type: "bind", Source: src, Options: opts}, st.IsDir())
}

// use records the container as a user of v and mounts v's driver mount if
// it is not mounted, with the undo step.
func (pr *preparer) use(v *Volume) error {
	m, name := pr.m, v.Name
	hadUsers := len(pr.users[name]) > 0
	pr.users.add(name, pr.container)
	mounted, err := m.activateLocked(v)
	if err != nil {
		return err
	}
	if mounted && !hadUsers {
		pr.undo = append(pr.undo, func() error { return m.deactivateLocked(v) })
	}
	return nil
}

// inherit adds a volumes_from mount; when it shows a volume, the container
// becomes one of the volume's users, so the volume is not removed under it.
func (pr *preparer) inherit(mt specs.Mount) error {
	if rel, err := filepath.Rel(pr.m.dir, mt.Source); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
		name, _, _ := strings.Cut(rel, string(filepath.Separator))
		v, err := pr.m.readMeta(name)
		if err != nil {
			return fmt.Errorf("volumes_from: %w", err)
		}
		if err := pr.use(v); err != nil {
			return err
		}
	}
	st, err := os.Stat(mt.Source)
	if err != nil {
		return fmt.Errorf("volumes_from: %w", err)
	}
	return pr.add(mt, st.IsDir())
}

func (pr *preparer) renewAnonymousLocked() error {
	vols, err := pr.m.listLocked()
	if err != nil {
		return err
	}
	for _, v := range vols {
		if !v.Anonymous || v.Labels[LabelProject] != pr.p.Name || v.Labels[LabelContainer] != pr.container {
			continue
		}
		if len(v.UsedBy) > 0 && !(len(v.UsedBy) == 1 && v.UsedBy[0] == pr.container) {
			return fmt.Errorf("%w: %s (by %s)", ErrInUse, v.Name, strings.Join(v.UsedBy, ", "))
		}
		if err := pr.m.removeLocked(v); err != nil {
			return err
		}
	}
	return nil
}

// copyInLocked copies the image's content at target into volume v, once.
//
// The state machine in v.CopyIn makes it crash-safe:
//
//	"" ──(volume empty, image has target)──► "pending" ──(copied, syncfs)──► "done"
//	"pending" seen by a later Prepare: a crash cut the copy short; the
//	volume's content (all of it from that copy) is wiped and copied again.
//
// "pending" is on disk (fsynced) before the first byte is copied, and
// "done" is written only after syncfs made every copied file durable.
func (m *Manager) copyInLocked(ctx context.Context, v *Volume, rootfs, target string) (retErr error) {
	data := m.dataPath(v.Name)
	switch v.CopyIn {
	case copyDone:
		return nil
	case copyPending:
		// Everything in the volume came from the interrupted copy: no
		// container ran with it. Back to "never copied", durably, before
		// anything else, so user data can never be wiped later.
		if err := wipeDir(data); err != nil {
			return fmt.Errorf("volume %q: redoing an interrupted copy-in: %w", v.Name, err)
		}
		if err := syncFS(data); err != nil {
			return err
		}
		v.CopyIn = copyNone
		if err := m.writeMeta(v); err != nil {
			return err
		}
	default:
		empty, err := dirEmpty(data)
		if err != nil || !empty {
			return err
		}
	}
	src, ok, err := openCopySource(rootfs, target)
	if err != nil || !ok {
		// Nothing at target in this image: stay "never copied" (no
		// metadata write), so an image with content there fills the
		// volume later.
		return err
	}
	defer closeFD(src)
	v.CopyIn = copyPending
	if err := m.writeMeta(v); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			// Leave the volume as it was: empty, never copied.
			if err := wipeDir(data); err == nil {
				v.CopyIn = copyNone
				_ = m.writeMeta(v)
			}
		}
	}()
	if err := copyIn(ctx, src, data); err != nil {
		return fmt.Errorf("volume %q: copying image content at %s: %w", v.Name, target, err)
	}
	if err := syncFS(data); err != nil {
		return err
	}
	v.CopyIn = copyDone
	return m.writeMeta(v)
}
