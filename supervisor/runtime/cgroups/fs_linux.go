package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// createdXattr marks a directory that berth created, so that Destroy,
// possibly in another process than Create, removes berth's intermediate
// directories and never one it found. cgroupfs (kernfs) keeps trusted.*
// extended attributes in memory for root, on v1 and v2 alike; where it
// does not, the in-memory record of the Manager that called Create is used.
const createdXattr = "trusted.berth.created"

// writeFile writes val to the cgroup file dir/name. cgroup files are
// written with a single write(2); the kernel parses the whole buffer.
func writeFile(dir, name, val string) error {
	w := &ruleWriter{dir: dir}
	if err := w.write(name, val); err != nil {
		w.close()
		return err
	}
	return w.close()
}

// ruleWriter writes values to cgroup files of one directory, one
// write(2) each, keeping the last file open for the next value to it.
type ruleWriter struct {
	dir  string
	name string
	f    *os.File
}

func (w *ruleWriter) write(name, val string) error {
	if w.f == nil || w.name != name {
		if err := w.close(); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		w.f, w.name = f, name
	}
	if _, err := w.f.WriteString(val); err != nil {
		return fmt.Errorf("cgroup: writing %q to %s: %w", val, filepath.Join(w.dir, name), unwrapPathErr(err))
	}
	return nil
}

func (w *ruleWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readFile returns the trimmed content of dir/name.
func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a file holding one unsigned number ("max" reads as
// maxUint).
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	return parseUint(s, filepath.Join(dir, name))
}

const maxUint = ^uint64(0)

func parseUint(s, where string) (uint64, error) {
	if s == "max" {
		return maxUint, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 reports "unlimited" values such as -1 for some files.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return maxUint, nil
		}
		return 0, fmt.Errorf("cgroup: %s: bad number %q", where, s)
	}
	return v, nil
}

// readKeyed parses a flat keyed file ("key value" per line), as
// memory.stat, cpu.stat, memory.events and memory.oom_control.
func readKeyed(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		m[k] = n
	}
	return m, nil
}

// readPids parses cgroup.procs.
func readPids(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroup: %s/cgroup.procs: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// mkdirChain creates base/rel one component at a time and returns the
// directories it created, outermost first. Each created directory is
// marked with createdXattr. visit, when not nil, runs on each new
// directory right after mkdir (v1 cpuset uses it to fill cpus/mems
// before the next level is made).
func mkdirChain(base, rel string, visit func(dir string) error) (created []string, err error) {
	// A concurrent Destroy of a sibling container may remove a shared,
	// now empty parent between our mkdirs; start over on ENOENT.
	for attempt := 0; ; attempt++ {
		created, err = mkdirChainOnce(base, rel, visit)
		if err == nil || !errors.Is(err, unix.ENOENT) || attempt == 4 {
			return created, err
		}
	}
}

func mkdirChainOnce(base, rel string, visit func(dir string) error) ([]string, error) {
	// Most often only the last directory is new (the parents are
	// shared by a project's containers): try it first.
	if leaf := filepath.Join(base, rel); leaf != base {
		err := unix.Mkdir(leaf, 0o755)
		switch {
		case err == nil:
			return markCreated(nil, leaf, visit)
		case errors.Is(err, unix.EEXIST):
			return nil, nil
		case !errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("cgroup: mkdir %s: %w", leaf, err)
		}
	}
	var created []string
	dir := base
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		err := unix.Mkdir(dir, 0o755)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return created, fmt.Errorf("cgroup: mkdir %s: %w", dir, err)
		}
		if created, err = markCreated(created, dir, visit); err != nil {
			return created, err
		}
	}
	return created, nil
}

// markCreated adds dir, just made, to created, marks it as berth's and
// visits it.
func markCreated(created []string, dir string, visit func(dir string) error) ([]string, error) {
	created = append(created, dir)
	// Best effort: without the mark only this Manager knows.
	_ = unix.Setxattr(dir, createdXattr, []byte("1"), 0)
	if visit != nil {
		if err := visit(dir); err != nil {
			return created, err
		}
	}
	return created, nil
}

// markedCreated reports whether dir carries berth's created mark.
func markedCreated(dir string) bool {
	buf := make([]byte, 8)
	_, err := unix.Getxattr(dir, createdXattr, buf)
	return err == nil
}

// rmdirRetry removes an empty cgroup directory. rmdir can fail with
// EBUSY for a short while after the last process left, until the kernel
// finishes tearing the dying tasks down.
func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Duration(i+1) * 2 * time.Millisecond)
	}
	return fmt.Errorf("cgroup: rmdir %s: %w", dir, err)
}

// removeTree removes dir and every cgroup below it (made by the
// container itself, e.g. in its cgroup namespace), deepest first.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return rmdirRetry(dir)
}

// removeParents removes, innermost first, the parents of leaf below
// base that berth created (known from created or the xattr mark). It
// stops at the first parent that was not berth's, or that still holds
// other cgroups (another container's): those stay.
func removeParents(base, leaf string, created map[string]bool) error {
	for dir := filepath.Dir(leaf); dir != base && strings.HasPrefix(dir, base+"/"); dir = filepath.Dir(dir) {
		if !created[dir] && !markedCreated(dir) {
			return nil
		}
		err := unix.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
			return nil // still in use by a sibling
		default:
			return fmt.Errorf("cgroup: rmdir %s: %w", dir, err)
		}
	}
	return nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// sortedUnique sorts pids and drops duplicates.
func sortedUnique(pids []int) []int {
	sort.Ints(pids)
	out := pids[:0]
	for i, p := range pids {
		if i == 0 || p != pids[i-1] {
			out = append(out, p)
		}
	}
	return out
}

// killAll kills every process listed by procs until none is left:
// freeze (so nothing forks meanwhile), SIGKILL each, thaw, and wait.
// freeze and thaw may be nil when no freezer is available.
func killAll(procs func() ([]int, error), freeze, thaw func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		pids, err := procs()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: processes %v still inside after SIGKILL", pids)
		}
		if i%10 == 0 { // re-kill now and then: new pids may have slipped in
			frozen := freeze != nil && freeze() == nil
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			if frozen {
				_ = thaw()
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// validatePath checks an OCI cgroupsPath as New accepts it: absolute,
// clean, not the root, no "..".
func validatePath(path string) (string, error) {
	if path == "" || !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("cgroup: path %q must be absolute", path)
	}
	for _, part := range strings.Split(path, "/") {
		if part == ".." || part == "." {
			return "", fmt.Errorf("cgroup: path %q must not contain %q", path, part)
		}
	}
	clean := filepath.Clean(path)
	if clean == "/" {
		return "", fmt.Errorf("cgroup: path %q names the root cgroup", path)
	}
	return clean, nil
}

// subtreeProcs lists the processes in dir and every cgroup below it.
func subtreeProcs(dir string) ([]int, error) {
	var all []int
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // a child cgroup went away meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readPids(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		all = append(all, pids...)
		return nil
	})
	return sortedUnique(all), err
}

// withTreeLock runs fn holding an exclusive flock(2) on the hierarchy's
// root directory. Every berth process takes it while it makes or removes
// directories of a hierarchy, so that one container's Create never sees
// a shared parent that another is still setting up (controllers not yet
// enabled, cpuset empty) or removing. flock only takes a lock on the open
// directory; it changes nothing in the cgroup.
func withTreeLock(base string, fn func() error) error {
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", base, err)
	}
	defer unix.Close(fd)
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cgroup: flock %s: %w", base, err)
	}
	return fn() // closing fd releases the lock
}

// rollbackDirs removes, deepest first, the directories a failed Create
// made. It kills nothing: a failed Create (even a repeated one on a
// running container) must not take down processes; directories that
// hold any are left for Destroy.
func rollbackDirs(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		_ = unix.Rmdir(made[i])
	}
}
