package netstack

import (
	"path/filepath"
	"sync"
	"testing"
)

// TestStateFileKeepsNewest: the state file holds the newest snapshot
// written, whatever order the writes finish in, and persist writes only
// when no later snapshot is on disk yet.
func TestStateFileKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Config{Root: dir, Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	st := func(n int) []byte {
		s := newState()
		for i := 0; i < n; i++ {
			s.Attachments[string(rune('a'+i))] = &attachmentState{}
		}
		b, err := s.marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	saved := func() int {
		s, err := loadState(filepath.Join(dir, "network"))
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Attachments)
	}
	if err := m.writeState(st(5), 5); err != nil {
		t.Fatal(err)
	}
	if err := m.writeState(st(3), 3); err != nil {
		t.Fatal(err)
	}
	if got := saved(); got != 5 {
		t.Fatalf("after snapshots 5 then 3 the file holds %d attachments, want 5", got)
	}
	// persist(5) finds snapshot 5 on disk and writes nothing, even
	// though the state in memory has changed since.
	m.mu.Lock()
	m.snap = 5
	m.st.Attachments["x"] = &attachmentState{}
	m.mu.Unlock()
	if err := m.persist(5); err != nil {
		t.Fatal(err)
	}
	if got := saved(); got != 5 {
		t.Fatalf("persist(5) rewrote the file: %d attachments", got)
	}
	// persist(6) writes a new snapshot: the one attachment in memory.
	if err := m.persist(6); err != nil {
		t.Fatal(err)
	}
	if got := saved(); got != 1 {
		t.Fatalf("persist(6): the file holds %d attachments, want 1", got)
	}
	// Many at once: all done, the file holds the last state.
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.mu.Lock()
			m.st.Attachments[string(rune('A'+i))] = &attachmentState{}
			m.snap++
			n := m.snap
			m.mu.Unlock()
			if err := m.persist(n); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := saved(); got != 17 {
		t.Fatalf("after 16 concurrent attaches the file holds %d attachments, want 17", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "network", ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
