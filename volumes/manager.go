package volumes

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Manager owns the volumes under one directory ($BERTH_ROOT/volumes) and
// the per-container secret and config files under another.
//
// Every operation that reads or changes volume metadata holds an exclusive
// flock on DIR/.lock for its duration, so Managers in several processes on
// the same root (the supervisor and a CLI command) never interleave. A
// Manager has no goroutines and needs no Close.
type Manager struct {
	dir      string // volumes directory
	filesDir string // per-container secrets and configs

	// LookupEnv resolves secrets and configs declared with
	// environment:. It defaults to os.LookupEnv; the supervisor may set
	// the project's environment (.env included) before the first
	// Prepare.
	LookupEnv func(string) (string, bool)
}

// New returns a Manager for the volumes under dir (normally
// $BERTH_ROOT/volumes), creating dir if needed. Secrets and configs are
// written below filesDir (normally $BERTH_ROOT/files), one directory per
// container.
func New(dir, filesDir string) (*Manager, error) {
	if dir == "" || filesDir == "" {
		return nil, fmt.Errorf("%w: volumes.New needs two directories", ErrInvalid)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	filesDir, err = filepath.Abs(filesDir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filesDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return &Manager{dir: dir, filesDir: filesDir, LookupEnv: os.LookupEnv}, nil
}

// NewForRoot returns a Manager for the berth state directory root:
// volumes in root/volumes, secrets and configs in root/files.
func NewForRoot(root string) (*Manager, error) {
	return New(filepath.Join(root, "volumes"), filepath.Join(root, "files"))
}

// Dir returns the volumes directory.
func (m *Manager) Dir() string { return m.dir }

// lock takes the exclusive metadata lock; the returned func releases it.
func (m *Manager) lock() (func(), error) {
	return flockExclusive(filepath.Join(m.dir, lockFile))
}

// Create makes a volume named name. It fails with ErrExists when the name
// is taken.
func (m *Manager) Create(name string, o CreateOptions) (*Volume, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.createLocked(name, o)
}

// Inspect returns the named volume's metadata.
func (m *Manager) Inspect(name string) (*Volume, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.inspectLocked(name)
}

func (m *Manager) inspectLocked(name string) (*Volume, error) {
	v, err := m.readMeta(name)
	if err != nil {
		return nil, err
	}
	v.UsedBy = m.loadUsersLocked()[name]
	return v, nil
}

// List returns every volume, sorted by name.
func (m *Manager) List() ([]*Volume, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.listLocked()
}

// Remove deletes the named volume and its data. A volume that a container
// uses is refused with ErrInUse unless force is set (for users left over by
// a crash). Removing an external volume is allowed here: this is the user
// asking, not a project's down.
func (m *Manager) Remove(name string, force bool) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	v, err := m.inspectLocked(name)
	if err != nil {
		return err
	}
	if len(v.UsedBy) > 0 && !force {
		return fmt.Errorf("%w: %s (by %s)", ErrInUse, name, strings.Join(v.UsedBy, ", "))
	}
	return m.removeLocked(v)
}

// PruneOptions select what Prune removes.
type PruneOptions struct {
	// All also removes unused named volumes; by default only anonymous
	// ones go, as with `docker volume prune` since Docker 23.
	All bool
	// Labels, when set, restrict pruning to volumes carrying all of them.
	Labels map[string]string
}

// Prune removes the volumes no container uses and returns their names,
// sorted. It also deletes the leftovers of interrupted creates and removes.
func (m *Manager) Prune(o PruneOptions) ([]string, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.sweepLocked(); err != nil {
		return nil, err
	}
	vols, err := m.listLocked()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range vols {
		if len(v.UsedBy) > 0 || (!o.All && !v.Anonymous) || !hasLabels(v.Labels, o.Labels) {
			continue
		}
		if err := m.removeLocked(v); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}

func hasLabels(have, want map[string]string) bool {
	for k, w := range want {
		if h, ok := have[k]; !ok || h != w {
			return false
		}
	}
	return true
}

// RemoveProjectVolumes removes the volumes berth created for project (those
// labelled with it) for `down -v`: named ones, and anonymous ones too when
// includeAnonymous is set. Volumes berth did not create for the project
// (those made by `berth volume create`, which external: true names) are
// never touched, and neither are the names in external (pass the actual
// names of the project's external volumes: a volume the project once
// created and now declares external stays) nor a volume still in use. It
// returns the removed names, sorted, and every error met.
func (m *Manager) RemoveProjectVolumes(project string, includeAnonymous bool, external ...string) ([]string, error) {
	if project == "" {
		return nil, fmt.Errorf("%w: empty project name", ErrInvalid)
	}
	return m.removeWhere(func(v *Volume) bool {
		return v.Labels[LabelProject] == project && (!v.Anonymous || includeAnonymous) && !slices.Contains(external, v.Name)
	}, "")
}

// RemoveAnonymous removes the anonymous volumes of one container (`up -V`,
// or `rm -v` of a container). Volumes in use by another container are left.
func (m *Manager) RemoveAnonymous(project, containerName string) ([]string, error) {
	return m.removeWhere(func(v *Volume) bool {
		return v.Anonymous && v.Labels[LabelProject] == project && v.Labels[LabelContainer] == containerName
	}, containerName)
}

// removeWhere removes, under the lock, the volumes match selects that no
// container other than owner ("" for none) uses. It returns the removed
// names and every error met, a volume in use among them.
func (m *Manager) removeWhere(match func(*Volume) bool, owner string) ([]string, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	vols, err := m.listLocked()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range vols {
		if !match(v) {
			continue
		}
		if len(v.UsedBy) > 0 && !(owner != "" && len(v.UsedBy) == 1 && v.UsedBy[0] == owner) {
			errs = append(errs, fmt.Errorf("%w: %s (by %s)", ErrInUse, v.Name, strings.Join(v.UsedBy, ", ")))
			continue
		}
		if err := m.removeLocked(v); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}

// Release undoes what Prepare did for containerName once the container is
// gone: the container is dropped from its volumes' users, a volume with a
// driver mount (driver_opts) is unmounted when its last user leaves, and
// the container's secret and config files are deleted. Volumes themselves
// (named and anonymous) are kept. Release is idempotent, and the
// supervisor can call it from saved state after a crash.
func (m *Manager) Release(containerName string) error {
	if err := ValidateName(containerName); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	users := m.loadUsersLocked()
	var errs []error
	if used := users.removeContainer(containerName); len(used) > 0 {
		if err := m.saveUsersLocked(users); err != nil {
			return err
		}
		for _, name := range used {
			if len(users[name]) > 0 {
				continue
			}
			v, err := m.readMeta(name)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err == nil {
				err = m.deactivateLocked(v)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(m.filesDir, containerName)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// deactivateLocked unmounts a driver volume that lost its last user. A
// tmpfs volume loses its content then, so its copy-in state is reset.
func (m *Manager) deactivateLocked(v *Volume) error {
	d, err := parseDriverOpts(v.Options)
	if err != nil || !d.mounts() {
		return err
	}
	if err := unmountVolume(m.dataPath(v.Name)); err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	if d.Type == "tmpfs" && v.CopyIn != copyNone {
		v.CopyIn = copyNone
		return m.writeMeta(v)
	}
	return nil
}

// activateLocked mounts a driver volume's device on its _data if it is not
// mounted yet.
func (m *Manager) activateLocked(v *Volume) (mounted bool, err error) {
	d, err := parseDriverOpts(v.Options)
	if err != nil || !d.mounts() {
		return false, err
	}
	data := m.dataPath(v.Name)
	already, err := isMountpoint(data)
	if err != nil || already {
		return false, err
	}
	if err := mountVolume(data, d); err != nil {
		return false, fmt.Errorf("volume %q: %w", v.Name, err)
	}
	return true, nil
}

// projectLabels returns the labels of the project volume key: the file's
// labels plus berth's project/volume keys.
func projectLabels(project, key string, own map[string]string) map[string]string {
	l := maps.Clone(own)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelProject] = project
	l[LabelVolume] = key
	return l
}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
