package scheduler

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportBoundary keeps the package free of side effects: besides the
// standard library it may import only spec, errgroup and go-multierror.
func TestImportBoundary(t *testing.T) {
	allowed := map[string]bool{
		"github.com/berth-dev/berth/spec":    true,
		"golang.org/x/sync/errgroup":         true,
		"github.com/hashicorp/go-multierror": true,
	}
	forbiddenStd := map[string]bool{"os": true, "os/exec": true, "syscall": true, "net": true, "unsafe": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			if (std && forbiddenStd[path]) || (!std && !allowed[path]) {
				t.Errorf("%s imports %q", name, path)
			}
		}
	}
}

// TestPackageDoc checks that doc.go holds the package comment with the
// lifecycle and state machine the supervisor relies on.
func TestPackageDoc(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("doc.go has no package comment")
	}
	doc := f.Doc.Text()
	for _, want := range []string{"Package scheduler", "pending", "done", "failed", "blocked", "skipped"} {
		if !strings.Contains(doc, want) {
			t.Errorf("package comment does not mention %q", want)
		}
	}
}
