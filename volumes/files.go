package volumes

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/spec"
)

// DefaultFileMode is the mode of a secret or config file whose mode: is
// not set, as in Compose.
const DefaultFileMode = 0o444

// fileKind is "secret" or "config".
type fileKind string

const (
	kindSecret fileKind = "secret"
	kindConfig fileKind = "config"
)

// fileTarget returns where a secret or config is mounted in the container:
// target if absolute; for secrets, /run/secrets/TARGET (TARGET defaulting
// to the source name); for configs, /TARGET (same default).
func fileTarget(kind fileKind, ref spec.FileRef) (string, error) {
	t := ref.Target
	if t == "" {
		t = ref.Source
	}
	if !path.IsAbs(t) {
		if kind == kindSecret {
			t = "/run/secrets/" + t
		} else {
			t = "/" + t
		}
	}
	return CleanTarget(t)
}

func parseID(kind fileKind, name, field, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q: %s %q must be a number", ErrInvalid, kind, name, field, s)
	}
	return int(n), nil
}

// fileContent returns a secret's or config's bytes from its file,
// environment variable or inline content.
func (m *Manager) fileContent(kind fileKind, def *spec.File) ([]byte, error) {
	switch {
	case def.External:
		return nil, fmt.Errorf("%w: external %s %q: berth has no %s store", ErrNotSupported, kind, def.Name, kind)
	case def.File != "":
		st, err := os.Stat(def.File)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", kind, def.Name, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s %q: %s is not a regular file", ErrInvalid, kind, def.Name, def.File)
		}
		b, err := os.ReadFile(def.File)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", kind, def.Name, err)
		}
		return b, nil
	case def.Environment != "":
		lookup := m.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(def.Environment)
		if !ok {
			return nil, fmt.Errorf("%w: %s %q: environment variable %s is not set", ErrInvalid, kind, def.Name, def.Environment)
		}
		return []byte(v), nil
	default:
		return []byte(def.Content), nil
	}
}

// materializeFiles writes the service's secrets and configs as files in
// the container's directory under filesDir (fresh each time) with their
// uid, gid and mode, and returns read-only bind mounts of them. They are
// not fsynced: they are derived data, written anew by every Prepare, and a
// container that could read them cannot outlive a power loss.
func (m *Manager) materializeFiles(p *spec.Project, svc *spec.Service, containerName string) ([]specs.Mount, error) {
	cdir := filepath.Join(m.filesDir, containerName)
	if err := os.RemoveAll(cdir); err != nil {
		return nil, err
	}
	if len(svc.Secrets) == 0 && len(svc.Configs) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, err
	}
	var mounts []specs.Mount
	for _, g := range []struct {
		kind fileKind
		refs []spec.FileRef
		defs []spec.File
	}{{kindSecret, svc.Secrets, p.Secrets}, {kindConfig, svc.Configs, p.Configs}} {
		if len(g.refs) == 0 {
			continue
		}
		dir := filepath.Join(cdir, string(g.kind)+"s")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		for i, ref := range g.refs {
			var def *spec.File
			for j := range g.defs {
				if g.defs[j].Name == ref.Source {
					def = &g.defs[j]
				}
			}
			if def == nil {
				return nil, fmt.Errorf("%w: service %q: %s %q is not declared in the project", ErrInvalid, svc.Name, g.kind, ref.Source)
			}
			target, err := fileTarget(g.kind, ref)
			if err != nil {
				return nil, fmt.Errorf("service %q: %s %q: %w", svc.Name, g.kind, ref.Source, err)
			}
			uid, err := parseID(g.kind, ref.Source, "uid", ref.UID)
			if err != nil {
				return nil, err
			}
			gid, err := parseID(g.kind, ref.Source, "gid", ref.GID)
			if err != nil {
				return nil, err
			}
			mode := uint32(DefaultFileMode)
			if ref.Mode != nil {
				mode = *ref.Mode
			}
			if mode&^0o7777 != 0 {
				return nil, fmt.Errorf("%w: %s %q: mode %o", ErrInvalid, g.kind, ref.Source, mode)
			}
			content, err := m.fileContent(g.kind, def)
			if err != nil {
				return nil, fmt.Errorf("service %q: %w", svc.Name, err)
			}
			// The index keeps two uses of one source (other targets,
			// other modes) apart; the source name is for people.
			fp := filepath.Join(dir, strconv.Itoa(i)+"-"+sanitizeFileName(ref.Source))
			if err := writeOwnedFile(fp, content, uid, gid, os.FileMode(mode)); err != nil {
				return nil, fmt.Errorf("service %q: %s %q: %w", svc.Name, g.kind, ref.Source, err)
			}
			mounts = append(mounts, specs.Mount{
				Destination: target,
				Type:        "bind",
				Source:      fp,
				Options:     []string{"rbind", "ro", "rprivate", "nosuid", "nodev", "noexec"},
			})
		}
	}
	return mounts, nil
}

// sanitizeFileName keeps [A-Za-z0-9_.-] of a name for use in a file name.
func sanitizeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

// writeOwnedFile creates path (it must not exist) with content, owner and
// mode. The mode is set with chmod after chown, so that
// umask and chown's clearing of set-id bits do not change it.
func writeOwnedFile(p string, content []byte, uid, gid int, mode os.FileMode) (retErr error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err := f.Close(); err != nil && retErr == nil {
			retErr = err
		}
		if retErr != nil {
			os.Remove(p)
		}
	}()
	if _, err := f.Write(content); err != nil {
		return err
	}
	// A new file is owned by the caller already; skipping that chown
	// lets an ordinary user (unit tests) write files for itself.
	if uid != os.Geteuid() || gid != os.Getegid() {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(mode&os.ModePerm | modeExtra(mode)); err != nil {
		return err
	}
	return nil
}

// modeExtra maps the set-id and sticky bits of a unix mode given as
// os.FileMode(uint32) to Go's mode bits.
func modeExtra(m os.FileMode) os.FileMode {
	u := uint32(m)
	var x os.FileMode
	if u&0o4000 != 0 {
		x |= os.ModeSetuid
	}
	if u&0o2000 != 0 {
		x |= os.ModeSetgid
	}
	if u&0o1000 != 0 {
		x |= os.ModeSticky
	}
	return x
}
