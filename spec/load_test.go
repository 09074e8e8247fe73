package spec

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// caseOptions is testdata/valid/NAME/options.json: the command line and
// environment of one case.
type caseOptions struct {
	Files       []string `json:"files"`
	WorkDir     string   `json:"workdir"` // relative to the case directory
	ProjectDir  string   `json:"project_dir"`
	ProjectName string   `json:"project_name"`
	EnvFiles    []string `json:"env_files"`
	Environ     []string `json:"environ"`
	Profiles    []string `json:"profiles"`
	Services    []string `json:"services"`
	Select      bool     `json:"select"`
}

// golden is what a valid case's want.json holds.
type golden struct {
	Project          *Project `json:"project"`
	DisabledServices []string `json:"disabled_services,omitempty"`
	Warnings         []string `json:"warnings,omitempty"`
}

func loadCase(t *testing.T, dir string) (*Project, error) {
	t.Helper()
	var co caseOptions
	if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
		if err := json.Unmarshal(b, &co); err != nil {
			t.Fatalf("options.json: %v", err)
		}
	}
	wd := filepath.Join(dir, co.WorkDir)
	return Load(context.Background(), LoadOptions{
		Files: co.Files, WorkingDir: wd, ProjectDir: co.ProjectDir, ProjectName: co.ProjectName,
		EnvFiles: co.EnvFiles, Environ: append([]string{"HOME=/home/tester"}, co.Environ...),
		Profiles: co.Profiles, Services: co.Services, SelectServices: co.Select,
	})
}

// scrub replaces the absolute testdata path so goldens do not depend on
// where the repository is checked out.
func scrub(b []byte, dir string) []byte {
	return []byte(strings.ReplaceAll(string(b), dir, "$CASE"))
}

func TestLoadValid(t *testing.T) {
	root, err := filepath.Abs("testdata/valid")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		dir := filepath.Join(root, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			p, err := loadCase(t, dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := json.MarshalIndent(golden{Project: p, DisabledServices: p.DisabledServices, Warnings: p.Warnings}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(scrub(got, dir), '\n')
			want := filepath.Join(dir, "want.json")
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(w) != string(got) {
				t.Errorf("model differs from %s:\n--- got\n%s", want, got)
			}
			for _, s := range p.Services {
				if _, err := ServiceHash(p, s.Name, os.ReadFile); err != nil {
					t.Errorf("ServiceHash(%s): %v", s.Name, err)
				}
			}
		})
	}
	if n < 40 {
		t.Errorf("only %d valid cases; want at least 40", n)
	}
}

func TestLoadInvalid(t *testing.T) {
	root, err := filepath.Abs("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < 40 {
		t.Errorf("only %d invalid cases; want at least 40", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			p, err := Load(context.Background(), LoadOptions{
				Files: []string{filepath.Base(f)}, WorkingDir: root,
				Environ: []string{"HOME=/home/tester", "SET=value"},
			})
			if err == nil {
				t.Fatalf("Load succeeded; want an error (project %q)", p.Name)
			}
			if p != nil {
				t.Errorf("Load returned a partial project with its error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			got := string(scrub([]byte(err.Error()), root)) + "\n"
			want := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(w) != got {
				t.Errorf("error differs from %s:\n got: %s\nwant: %s", want, got, w)
			}
		})
	}
}
