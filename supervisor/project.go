package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/spec"
)

// projectState is Root/state/projects/NAME.json: what the daemon needs to
// act on a project without its compose files (down, boot restore).
type projectState struct {
	Version int `json:"version"`
	// Project is the spec.Project as last applied by up.
	Project *spec.Project `json:"project"`
	// Hashes are the services' spec.ServiceHash at that up.
	Hashes map[string]string `json:"hashes,omitempty"`
	// Stopped names containers the user stopped through the API (stop,
	// kill): boot restore leaves them stopped. Start and up clear them.
	Stopped map[string]bool `json:"stopped,omitempty"`
	// OneOff names the `run` containers: never part of a reconcile.
	OneOff    map[string]bool `json:"one_off,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

const projectStateVersion = 1

// projectStore keeps the project state files. Callers serialize work on
// one project with lock(name).
type projectStore struct {
	dir string

	mu    sync.Mutex // guards locks
	locks map[string]*sync.Mutex
}

func newProjectStore(root string) (*projectStore, error) {
	dir := filepath.Join(root, "state", "projects")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &projectStore{dir: dir, locks: map[string]*sync.Mutex{}}, nil
}

// lock serializes up, down and run of one project; it returns the unlock.
func (s *projectStore) lock(name string) func() {
	s.mu.Lock()
	m := s.locks[name]
	if m == nil {
		m = &sync.Mutex{}
		s.locks[name] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (s *projectStore) path(name string) string { return filepath.Join(s.dir, name+".json") }

// validProjectName keeps project names usable as file names.
func validProjectName(name string) error {
	if name == "" {
		return errors.New("project name is empty")
	}
	if len(name) > 200 || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid project name %q", name)
	}
	return nil
}

// load returns the saved state of project name, or nil when there is none.
func (s *projectStore) load(name string) (*projectState, error) {
	if err := validProjectName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st projectState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("project state %s: %w", s.path(name), err)
	}
	return &st, nil
}

func (s *projectStore) save(name string, st *projectState) error {
	if err := validProjectName(name); err != nil {
		return err
	}
	st.Version = projectStateVersion
	st.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path(name), b, true)
}

func (s *projectStore) remove(name string) error {
	err := os.Remove(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// update loads, changes and saves the state of name (creating an empty
// one when missing, unless create is false: then a missing state is left
// alone).
func (s *projectStore) update(name string, create bool, fn func(*projectState)) error {
	st, err := s.load(name)
	if err != nil {
		return err
	}
	if st == nil {
		if !create {
			return nil
		}
		st = &projectState{}
	}
	fn(st)
	return s.save(name, st)
}

// names lists the projects with saved state, sorted.
func (s *projectStore) names() []string {
	ents, _ := os.ReadDir(s.dir)
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			out = append(out, strings.TrimSuffix(n, ".json"))
		}
	}
	sort.Strings(out)
	return out
}
