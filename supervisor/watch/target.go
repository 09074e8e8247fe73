package watch

import (
	"path"
	"strings"
)

// Target is one container as the syncer sees it from the host.
type Target struct {
	// Container is the container's name (for messages).
	Container string
	// Root is the host path of the container's root filesystem (the
	// overlay merged directory while it is mounted).
	Root string
	// Mounts are the container's mounts; a path under a bind mount's
	// Destination is written to its Source instead of Root.
	Mounts []Mount
	// ProcRoot, when set (/proc/PID/root of a running container), reaches
	// paths under mounts that have no host source (tmpfs).
	ProcRoot string
	// UID and GID own the files and directories the syncer makes.
	UID, GID int
}

// Mount is one mount of a container.
type Mount struct {
	Destination string // absolute path in the container
	Source      string // host path (bind mounts)
	Bind        bool
}

// resolve maps an absolute container path to a host directory to resolve
// in (as its root) and the path inside it.
func (t *Target) resolve(cpath string) (root, inner string, err error) {
	cpath = path.Clean("/" + cpath)
	best := -1
	for i, m := range t.Mounts {
		d := path.Clean("/" + m.Destination)
		if d == "/" {
			continue
		}
		if cpath == d || strings.HasPrefix(cpath, d+"/") {
			if best < 0 || len(d) >= len(path.Clean("/"+t.Mounts[best].Destination)) {
				best = i
			}
		}
	}
	if best < 0 {
		return t.Root, cpath, nil
	}
	m := t.Mounts[best]
	d := path.Clean("/" + m.Destination)
	if m.Bind && m.Source != "" {
		return m.Source, "/" + strings.TrimPrefix(strings.TrimPrefix(cpath, d), "/"), nil
	}
	if t.ProcRoot != "" {
		return t.ProcRoot, cpath, nil
	}
	return "", "", errNoHostPath(d)
}

type errNoHostPath string

func (e errNoHostPath) Error() string {
	return "mount " + string(e) + " has no host path and the container is not running"
}

// SyncResult counts what one sync did.
type SyncResult struct {
	Written int // files and symlinks written
	Deleted int // paths deleted (a directory counts once)
	Dirs    int // directories made
}

func (r *SyncResult) add(o SyncResult) {
	r.Written += o.Written
	r.Deleted += o.Deleted
	r.Dirs += o.Dirs
}
