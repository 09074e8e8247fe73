package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Batch is the set of changes of one quiet period.
type Batch struct {
	// Paths changed, slash-separated and relative to the watched root,
	// sorted, each once. "." is the root itself (a watched file). A path
	// in a batch may exist or not: the consumer looks at the host to see
	// what to do (write, make a directory, delete).
	Paths []string
	// Full: events were lost (the kernel queue overflowed); everything
	// under the root must be looked at again.
	Full bool
}

// Default batching.
const (
	DefaultQuiet    = 50 * time.Millisecond
	DefaultMaxDelay = 500 * time.Millisecond
)

// Watcher watches one host path (a directory, recursively, or a single
// file) and reports its changes in batches. New directories are watched
// as they appear, and what they already hold is reported with them.
type Watcher struct {
	root     string // absolute, cleaned
	file     string // base name when root is a file; "" for a directory
	m        *Matcher
	quiet    time.Duration
	maxDelay time.Duration
}

// NewWatcher returns a watcher for root. quiet is how long no event must
// arrive before a batch is delivered, maxDelay bounds how long a batch
// waits under a steady stream of events (zero: the defaults).
func NewWatcher(root string, m *Matcher, quiet, maxDelay time.Duration) (*Watcher, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = &Matcher{}
	}
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	if maxDelay < quiet {
		maxDelay = quiet
	}
	w := &Watcher{root: root, m: m, quiet: quiet, maxDelay: maxDelay}
	if !fi.IsDir() {
		w.file = filepath.Base(root)
	}
	return w, nil
}

// Root is the watched path.
func (w *Watcher) Root() string { return w.root }

// Run watches until ctx ends (then it returns nil) and calls fn with each
// batch, on Run's goroutine: events that arrive while fn runs are kept
// (by the kernel) for the next batch. ready, if not nil, is called once
// every directory present at the start is watched.
func (w *Watcher) Run(ctx context.Context, ready func(), fn func(Batch)) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fsw.Close()

	pending := map[string]bool{}
	// dirs: the directories watched (fsnotify forgets a moved one before
	// we see its parent's event, and a gone path cannot be stat'ed).
	dirs := map[string]bool{}
	full := false
	if w.file != "" {
		if err := fsw.Add(filepath.Dir(w.root)); err != nil {
			return err
		}
	} else if err := w.addTree(fsw, w.root, dirs, nil); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}

	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var first time.Time // when the oldest pending change arrived
	flush := func() {
		if len(pending) == 0 && !full {
			return
		}
		b := Batch{Full: full}
		for p := range pending {
			b.Paths = append(b.Paths, p)
		}
		sort.Strings(b.Paths)
		clear(pending)
		full, first = false, time.Time{}
		fn(b)
	}
	mark := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		wait := w.quiet
		if left := w.maxDelay - now.Sub(first); left < wait {
			wait = max(left, 0)
		}
		quiet.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return nil
			}
			if w.event(fsw, ev, dirs, pending) {
				mark()
			}
		case err, ok := <-fsw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				full = true
				mark()
				continue
			}
			return fmt.Errorf("watch %s: %w", w.root, err)
		case <-quiet.C:
			flush()
		}
	}
}

// event records one fsnotify event in pending and reports whether it
// was kept.
func (w *Watcher) event(fsw *fsnotify.Watcher, ev fsnotify.Event, dirs, pending map[string]bool) bool {
	if ev.Op == fsnotify.Chmod {
		return false // mode-only changes are not synced (and atime noise)
	}
	if w.file != "" {
		if filepath.Base(ev.Name) != w.file {
			return false
		}
		pending["."] = true
		return true
	}
	rel, err := filepath.Rel(w.root, ev.Name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return false
	}
	rel = filepath.ToSlash(rel)
	if rel == "." {
		return false // the root itself went away or was renamed
	}
	fi, statErr := os.Lstat(ev.Name)
	isDir := statErr == nil && fi.IsDir()
	if statErr != nil && dirs[ev.Name] {
		isDir = true // a watched directory that went away
	}
	if w.m.Ignored(rel, isDir) && (!isDir || w.m.SkipDir(rel)) {
		return false
	}
	if ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
		// A renamed-away directory keeps its inotify watch; drop it and
		// those below it so its later events are not misread.
		if statErr != nil && isDir {
			prefix := ev.Name + string(filepath.Separator)
			for p := range dirs {
				if p == ev.Name || strings.HasPrefix(p, prefix) {
					_ = fsw.Remove(p)
					delete(dirs, p)
				}
			}
		}
	}
	pending[rel] = true
	if isDir && ev.Has(fsnotify.Create) {
		// A new directory: watch it and everything below, and report
		// what it already holds (made before the watch was in place).
		_ = w.addTree(fsw, ev.Name, dirs, pending)
	}
	return true
}

// addTree watches dir and its subdirectories (skipping ignored ones),
// recording them in dirs, and, when pending is not nil, records every path
// found below dir.
func (w *Watcher) addTree(fsw *fsnotify.Watcher, dir string, dirs, pending map[string]bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // vanished meanwhile
		}
		rel, _ := filepath.Rel(w.root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && w.m.SkipDir(rel) {
				return filepath.SkipDir
			}
			if err := fsw.Add(p); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					// inotify's per-user watch limit, not the disk.
					return fmt.Errorf("watch %s: too many directories watched (raise sysctl fs.inotify.max_user_watches): %w", p, err)
				}
				if p == dir {
					return fmt.Errorf("watch %s: %w", p, err)
				}
				return nil // vanished meanwhile
			}
			dirs[p] = true
		}
		if pending != nil && rel != "." && !w.m.Ignored(rel, d.IsDir()) {
			pending[rel] = true
		}
		return nil
	})
}
