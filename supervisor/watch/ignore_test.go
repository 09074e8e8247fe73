package watch

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMatcher(t *testing.T) {
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, ".dockerignore"), []byte(`
# build output
node_modules
*.log
!keep.log
src/gen/**
`), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(ctx, "src")
	pats, err := ReadDockerignore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher([]string{"secret.txt", "tmp/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddContextIgnore(ctx, root, pats); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rel     string
		dir     bool
		ignored bool
	}{
		{"app.js", false, false},
		{"lib/util.js", false, false},
		{"debug.log", false, false},  // *.log is anchored at the context: src/debug.log is kept
		{"keep.log", false, false},   // negated
		{"gen/out.js", false, true},  // src/gen/** from the context's .dockerignore
		{"gen", true, false},         // the directory itself is not matched by gen/**
		{"secret.txt", false, true},  // rule ignore
		{"tmp/a", false, true},       // rule ignore, parent directory
		{"tmp", true, true},          //
		{".app.js.swp", false, true}, // vim
		{"app.js~", false, true},     // emacs backup
		{".#app.js", false, true},    // emacs lock
		{"4913", false, true},        // vim write test
		{"x.tmp", false, true},
		{"#app.js#", false, true},             // emacs autosave
		{".app.js.kate-swp", false, true},     // Kate
		{".goutputstream-XYZ12", false, true}, // gedit
		{"app.js___jb_tmp___", false, true},   // JetBrains
		{"#", false, false},
		{"dir.swp", true, false}, // a directory named like a temp file is kept
	}
	for _, c := range cases {
		if got := m.Ignored(c.rel, c.dir); got != c.ignored {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", c.rel, c.dir, got, c.ignored)
		}
	}
}

func TestMatcherNegationAndSkipDir(t *testing.T) {
	m, err := NewMatcher([]string{"build", "!build/keep.txt", "cache/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Ignored("build/a.o", false) {
		t.Error("build/a.o not ignored")
	}
	if m.Ignored("build/keep.txt", false) {
		t.Error("build/keep.txt ignored despite !build/keep.txt")
	}
	// With a negation, no directory can be skipped wholesale.
	if m.SkipDir("cache") {
		t.Error("SkipDir(cache) with an exclusion pattern present")
	}
	m2, _ := NewMatcher([]string{"cache"}, nil)
	if !m2.SkipDir("cache") {
		t.Error("SkipDir(cache) = false")
	}
	if m2.SkipDir("src") {
		t.Error("SkipDir(src) = true")
	}
}

func TestMatcherInclude(t *testing.T) {
	m, err := NewMatcher([]string{"*_test.go"}, []string{"*.go", "templates/"})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"main.go":          false,
		"main_test.go":     true, // ignore wins
		"README.md":        true, // not included
		"templates/a.html": false,
		"static/a.css":     true,
	} {
		if got := m.Ignored(rel, false); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", rel, got, want)
		}
	}
	if m.Ignored("static", true) || m.SkipDir("static") {
		t.Error("directories must not be dropped for include")
	}
}

func TestMatcherContextOutside(t *testing.T) {
	// A .dockerignore of a context that does not contain the root does
	// not apply.
	m, _ := NewMatcher(nil, nil)
	if err := m.AddContextIgnore("/ctx", "/elsewhere", []string{"*"}); err != nil {
		t.Fatal(err)
	}
	if m.Ignored("a", false) {
		t.Error("outside context's .dockerignore applied")
	}
}

func TestMatcherBadPattern(t *testing.T) {
	if _, err := NewMatcher([]string{"[a-"}, nil); err == nil {
		t.Error("bad pattern accepted")
	}
}
