package spec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeStack(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadDir(t testing.TB, dir string, o LoadOptions) (*Project, error) {
	t.Helper()
	o.WorkingDir = dir
	return Load(context.Background(), o)
}

// aliasBomb builds the classic "billion laughs" with levels levels of 9
// aliases each: 9^levels nodes once expanded.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString(`x-l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "x-l%d: &l%d [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "services:\n  web:\n    image: nginx\n    labels: *l%d\n", levels)
	return b.String()
}

func TestAliasBombFailsFast(t *testing.T) {
	for _, levels := range []int{8, 12} {
		dir := writeStack(t, map[string]string{"compose.yaml": aliasBomb(levels)})
		p, err := loadDir(t, dir, LoadOptions{})
		if err == nil || p != nil {
			t.Fatalf("levels=%d: Load succeeded", levels)
		}
		if !strings.Contains(err.Error(), "YAML aliases expand to more than 200000 nodes") ||
			!strings.HasPrefix(err.Error(), "compose.yaml:") {
			t.Errorf("levels=%d: error %q", levels, err)
		}
	}
}

func TestAliasBombInIncludedFile(t *testing.T) {
	dir := writeStack(t, map[string]string{
		"compose.yaml": "include: [bomb.yaml]\nservices:\n  a:\n    image: busybox\n",
		"bomb.yaml":    aliasBomb(8),
	})
	_, err := loadDir(t, dir, LoadOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "bomb.yaml:") || !strings.Contains(err.Error(), "alias bomb") {
		t.Fatalf("error %v, want the alias bomb reported in bomb.yaml", err)
	}
}

func TestDeepNestingFailsFast(t *testing.T) {
	const depth = 10000
	flow := "services:\n  web:\n    image: nginx\n    labels: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n"
	var block strings.Builder
	// Block sequences nest on one line: "- - - - x".
	block.WriteString("services:\n  web:\n    image: nginx\n    x-deep:\n      ")
	block.WriteString(strings.Repeat("- ", depth) + "x\n")
	var mapping strings.Builder
	mapping.WriteString("x-deep:\n")
	for i := 1; i < 300; i++ {
		mapping.WriteString(strings.Repeat(" ", i) + "a:\n")
	}
	mapping.WriteString("services: {}\n")
	block200 := "services:\n  web:\n    image: nginx\n    x-deep:\n      " + strings.Repeat("- ", 200) + "x\n"
	for name, content := range map[string]string{"flow": flow, "block": block.String(), "block200": block200, "mapping": mapping.String()} {
		t.Run(name, func(t *testing.T) {
			dir := writeStack(t, map[string]string{"compose.yaml": content})
			p, err := loadDir(t, dir, LoadOptions{})
			if err == nil || p != nil {
				t.Fatal("Load succeeded")
			}
			// yaml.v3 itself stops at depth 10000 in block style; berth's
			// own limit catches everything from 129 levels on.
			msg := err.Error()
			deep := strings.Contains(msg, "YAML nested deeper than 128 levels") || strings.Contains(msg, "exceeded max depth")
			if !deep || !strings.HasPrefix(msg, "compose.yaml:") {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestFileTooLarge(t *testing.T) {
	big := "services:\n  web:\n    image: nginx\nx-pad: \"" + strings.Repeat("a", maxFileSize) + "\"\n"
	dir := writeStack(t, map[string]string{"compose.yaml": big})
	_, err := loadDir(t, dir, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "compose.yaml: file is larger than 8 MiB") {
		t.Fatalf("error %v", err)
	}
}
