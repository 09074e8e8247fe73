package watch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// startWatcher runs a watcher on root and returns its batches.
func startWatcher(t *testing.T, root string, m *Matcher) <-chan Batch {
	t.Helper()
	w, err := NewWatcher(root, m, 30*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	out := make(chan Batch, 100)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func() { close(ready) }, func(b Batch) { out <- b }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return out
}

// collect gathers the paths of the batches that arrive until want is
// seen or 5 s pass.
func collect(t *testing.T, out <-chan Batch, want []string) []Batch {
	t.Helper()
	var got []Batch
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for {
		all := true
		for _, w := range want {
			all = all && seen[w]
		}
		if all {
			return got
		}
		select {
		case b := <-out:
			got = append(got, b)
			for _, p := range b.Paths {
				seen[p] = true
			}
		case <-deadline:
			t.Fatalf("batches %v: want %v", got, want)
		}
	}
}

func TestWatcherBatchesAndIgnores(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "old/keep.txt"), "x")
	m, _ := NewMatcher([]string{"ignored"}, nil)
	out := startWatcher(t, root, m)

	// Several writes in quick succession come as one batch.
	write(t, filepath.Join(root, "a.txt"), "1")
	write(t, filepath.Join(root, "b.txt"), "1")
	write(t, filepath.Join(root, "old/keep.txt"), "2")
	write(t, filepath.Join(root, ".a.txt.swp"), "swap")
	write(t, filepath.Join(root, "ignored"), "no")
	got := collect(t, out, []string{"a.txt", "b.txt", "old/keep.txt"})
	if len(got) != 1 {
		t.Errorf("got %d batches, want 1: %v", len(got), got)
	}
	if want := []string{"a.txt", "b.txt", "old/keep.txt"}; !reflect.DeepEqual(got[0].Paths, want) {
		t.Errorf("batch %v, want %v", got[0].Paths, want)
	}

	// A new directory, with content made before its watch existed, and
	// then a file written into it later.
	if err := os.MkdirAll(filepath.Join(root, "new/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "new/deep/f.txt"), "f")
	collect(t, out, []string{"new", "new/deep/f.txt"})
	time.Sleep(100 * time.Millisecond)
	write(t, filepath.Join(root, "new/deep/later.txt"), "later")
	collect(t, out, []string{"new/deep/later.txt"})

	// Deletes and renames are reported under the old name too.
	if err := os.Remove(filepath.Join(root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "b.txt"), filepath.Join(root, "c.txt")); err != nil {
		t.Fatal(err)
	}
	collect(t, out, []string{"a.txt", "b.txt", "c.txt"})

	// Nothing ignored ever showed up.
	select {
	case b := <-out:
		t.Errorf("unexpected batch %v", b)
	case <-time.After(150 * time.Millisecond):
	}
}

func TestWatcherIgnoredDirNotWatched(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "node_modules/x.js"), "x")
	m, _ := NewMatcher([]string{"node_modules"}, nil)
	out := startWatcher(t, root, m)
	write(t, filepath.Join(root, "node_modules/x.js"), "y")
	write(t, filepath.Join(root, "node_modules/sub/z.js"), "z")
	write(t, filepath.Join(root, "app.js"), "a")
	got := collect(t, out, []string{"app.js"})
	for _, b := range got {
		for _, p := range b.Paths {
			if p != "app.js" {
				t.Errorf("ignored path reported: %s", p)
			}
		}
	}
}

func TestWatcherSingleFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "app.conf")
	write(t, f, "1")
	out := startWatcher(t, f, nil)
	write(t, filepath.Join(dir, "other"), "x")
	write(t, f, "2")
	got := collect(t, out, []string{"."})
	for _, b := range got {
		if !reflect.DeepEqual(b.Paths, []string{"."}) {
			t.Errorf("batch %v, want [.]", b.Paths)
		}
	}
}

func TestWatcherMaxDelay(t *testing.T) {
	// A steady stream of writes (every 10 ms, under the 30 ms quiet
	// period) still gets batches out, bounded by the max delay.
	root := t.TempDir()
	w, err := NewWatcher(root, nil, 30*time.Millisecond, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Batch, 100)
	ready := make(chan struct{})
	go w.Run(ctx, func() { close(ready) }, func(b Batch) { out <- b })
	<-ready
	stop := time.After(600 * time.Millisecond)
	n := 0
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-time.After(10 * time.Millisecond):
			write(t, filepath.Join(root, "f"), "x")
			n++
		}
	}
	if len(out) == 0 {
		t.Errorf("no batch during %d writes", n)
	}
}

func TestNewWatcherMissingPath(t *testing.T) {
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "nope"), nil, 0, 0); err == nil {
		t.Error("missing path accepted")
	}
}

// With include set, a directory moved away is still reported (its files
// were included), though its own name matches no include pattern.
func TestWatcherIncludeDirMovedAway(t *testing.T) {
	root, away := t.TempDir(), t.TempDir()
	write(t, filepath.Join(root, "src/a.go"), "package a")
	m, _ := NewMatcher(nil, []string{"*.go", "**/*.go"})
	out := startWatcher(t, root, m)
	if err := os.Rename(filepath.Join(root, "src"), filepath.Join(away, "src")); err != nil {
		t.Fatal(err)
	}
	collect(t, out, []string{"src"})
}
