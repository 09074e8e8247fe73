package volumes

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Copy-in states kept in a volume's metadata.
const (
	copyNone    = ""        // never copied into
	copyPending = "pending" // a copy-in started; if seen again it crashed and is redone
	copyDone    = "done"    // copied once; never again
)

// Volume is a volume's metadata, as stored in meta.json and printed by
// `berth volume inspect`.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Options    map[string]string `json:"Options"` // driver_opts
	Scope      string            `json:"Scope"`
	// Anonymous is set on anonymous volumes (a target with no source, or
	// an image VOLUME).
	Anonymous bool `json:"Anonymous,omitempty"`
	// UsedBy lists the containers whose mounts Prepare made and that have
	// not been released yet, sorted. It is not part of meta.json (see
	// userTable).
	UsedBy []string `json:"UsedBy,omitempty"`
	// CopyIn is the image copy-in state: "", "pending" or "done".
	CopyIn string `json:"CopyIn,omitempty"`
}

// CreateOptions are the settings of a new volume.
type CreateOptions struct {
	Driver     string            // "" or "local"
	DriverOpts map[string]string // type, device, o
	Labels     map[string]string
	Anonymous  bool
}

const (
	metaFile  = "meta.json"
	usersFile = ".users.json"
	dataDir   = "_data"
	lockFile  = ".lock"
)

func (m *Manager) volDir(name string) string   { return filepath.Join(m.dir, name) }
func (m *Manager) dataPath(name string) string { return filepath.Join(m.dir, name, dataDir) }

func randSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeFileAtomic writes data to path through a fresh temporary file in the
// same directory: write, fsync, rename, fsync the directory. After it
// returns, path holds either the old or the new content after any crash,
// never a mix.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileRename(path, data, perm, true)
}

// writeFileRename writes data to path through a temporary file and a
// rename, with fsyncs when durable. Without them a crash of the process
// still leaves the old or the new content (the kernel has both), but a
// power loss may leave the old one or, on some filesystems, an empty file.
func writeFileRename(path string, data []byte, perm fs.FileMode, durable bool) (retErr error) {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+randSuffix())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

func (m *Manager) readMeta(name string) (*Volume, error) {
	b, err := os.ReadFile(filepath.Join(m.volDir(name), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	v := &Volume{}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("volume %q: corrupt metadata: %w", name, err)
	}
	v.Mountpoint = m.dataPath(name)
	v.UsedBy = nil
	return v, nil
}

// writeMeta stores v's durable metadata (everything but its users).
func (m *Manager) writeMeta(v *Volume) error {
	c := *v
	c.UsedBy = nil
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(m.volDir(v.Name), metaFile), append(b, '\n'), 0o600)
}

// userTable maps a volume name to the containers using it (sorted). It
// is kept in one file, DIR/.users.json, written atomically but not
// fsynced: it must survive a crash of berth (the kernel keeps the file),
// while after a power loss no container runs anyway and a lost or empty
// file correctly means "no users". One small file instead of one per
// volume keeps both fsyncs and metadata operations off the path of every
// container start.
type userTable map[string][]string

func (m *Manager) loadUsersLocked() userTable {
	u := userTable{}
	if b, err := os.ReadFile(filepath.Join(m.dir, usersFile)); err == nil {
		_ = json.Unmarshal(b, &u) // unreadable: no users
	}
	return u
}

func (m *Manager) saveUsersLocked(u userTable) error {
	for k, v := range u {
		if len(v) == 0 {
			delete(u, k)
		}
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return writeFileRename(filepath.Join(m.dir, usersFile), b, 0o600, false)
}

func (u userTable) clone() userTable {
	c := make(userTable, len(u))
	for k, v := range u {
		c[k] = slices.Clone(v)
	}
	return c
}

// equal compares two tables, ignoring volumes without users.
func (u userTable) equal(o userTable) bool {
	for k, v := range u {
		if !slices.Equal(v, o[k]) {
			return false
		}
	}
	for k, v := range o {
		if len(v) > 0 && len(u[k]) == 0 {
			return false
		}
	}
	return true
}

// add records c as a user of vol; it reports whether c was new.
func (u userTable) add(vol, c string) bool {
	if slices.Contains(u[vol], c) {
		return false
	}
	l := append(slices.Clone(u[vol]), c)
	slices.Sort(l)
	u[vol] = l
	return true
}

// removeContainer drops c from every volume and returns the volumes it
// used, sorted.
func (u userTable) removeContainer(c string) []string {
	var out []string
	for vol, l := range u {
		if i := slices.Index(l, c); i >= 0 {
			u[vol] = slices.Delete(slices.Clone(l), i, i+1)
			out = append(out, vol)
		}
	}
	slices.Sort(out)
	return out
}

// createLocked makes a new volume: the directory with its metadata and an
// empty _data is built under a temporary name and renamed into place, so a
// crash leaves either no volume or a complete one.
func (m *Manager) createLocked(name string, o CreateOptions) (_ *Volume, retErr error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if o.Driver == "" {
		o.Driver = DriverLocal
	}
	if o.Driver != DriverLocal {
		return nil, fmt.Errorf("%w: volume %q: driver %q (only %q)", ErrNotSupported, name, o.Driver, DriverLocal)
	}
	if _, err := parseDriverOpts(o.DriverOpts); err != nil {
		return nil, fmt.Errorf("volume %q: %w", name, err)
	}
	if _, err := os.Lstat(m.volDir(name)); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, name)
	}
	v := &Volume{
		Name:      name,
		Driver:    o.Driver,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
		Labels:    maps.Clone(o.Labels),
		Options:   maps.Clone(o.DriverOpts),
		Scope:     "local",
		Anonymous: o.Anonymous,
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	tmp := filepath.Join(m.dir, ".new-"+name+"-"+randSuffix())
	if err := os.Mkdir(tmp, 0o701); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(tmp, metaFile), append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	if err := renameNoReplace(tmp, m.volDir(name)); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil, fmt.Errorf("%w: %s", ErrExists, name)
		}
		return nil, err
	}
	if err := syncDir(m.dir); err != nil {
		return nil, err
	}
	v.Mountpoint = m.dataPath(name)
	return v, nil
}

// removeLocked removes a volume: its driver mount (if any) is undone, the
// directory is renamed out of the way (so the name is free at once and a
// crash cannot leave a half-removed volume under its name) and deleted.
func (m *Manager) removeLocked(v *Volume) error {
	data := m.dataPath(v.Name)
	if err := unmountVolume(data); err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	// Never delete through a mount: a bind-driver volume's _data shows
	// the user's host directory while mounted.
	if mounted, err := isMountpoint(data); err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	} else if mounted {
		return fmt.Errorf("volume %q: %s is still mounted", v.Name, data)
	}
	trash := filepath.Join(m.dir, ".rm-"+v.Name+"-"+randSuffix())
	if err := os.Rename(m.volDir(v.Name), trash); err != nil {
		return err
	}
	if err := syncDir(m.dir); err != nil {
		return err
	}
	if u := m.loadUsersLocked(); u[v.Name] != nil { // forced removal of a used volume
		delete(u, v.Name)
		if err := m.saveUsersLocked(u); err != nil {
			return err
		}
	}
	return os.RemoveAll(trash)
}

// listLocked reads every volume, sorted by name. Leftovers of interrupted
// creates and removes (names starting with ".") are skipped.
func (m *Manager) listLocked() ([]*Volume, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, err
	}
	users := m.loadUsersLocked()
	var out []*Volume
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		v, err := m.readMeta(e.Name())
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		v.UsedBy = users[v.Name]
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// sweepLocked deletes the leftovers of creates and removes that a crash
// interrupted.
func (m *Manager) sweepLocked() error {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || !(strings.HasPrefix(n, ".new-") || strings.HasPrefix(n, ".rm-")) {
			continue
		}
		p := filepath.Join(m.dir, n)
		d := filepath.Join(p, dataDir)
		if mounted, err := isMountpoint(d); err != nil || mounted {
			if err := unmountVolume(d); err != nil {
				continue
			}
		}
		if mounted, err := isMountpoint(d); err != nil || mounted {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}
