package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runImageCLI runs the CLI in-process with --root root and returns its
// stdout and stderr together.
func runImageCLI(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runBerth(t, "", append([]string{"--root", root}, args...)...)
	return out + errOut, err
}

func rootfsTar(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"etc/passwd", "root:x:0:0::/root:/bin/sh\n"}, {"hello", "hi\n"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageCommands(t *testing.T) {
	root := t.TempDir()
	out, err := runImageCLI(t, root, "image", "import", "--change", `CMD ["sh"]`, rootfsTar(t), "busybox:latest")
	if err != nil || !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("import: %q %v", out, err)
	}
	id := strings.TrimSpace(out)

	out, err = runImageCLI(t, root, "image", "ls", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []imageRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("ls json: %v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].Repository != "docker.io/library/busybox" || rows[0].Tag != "latest" || !strings.HasPrefix(id, "sha256:"+rows[0].ID) {
		t.Fatalf("ls: %+v", rows)
	}
	out, err = runImageCLI(t, root, "image", "ls")
	if err != nil || !strings.Contains(out, "docker.io/library/busybox   latest") {
		t.Fatalf("ls table: %q %v", out, err)
	}

	out, err = runImageCLI(t, root, "image", "inspect", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	var insp []map[string]any
	if err := json.Unmarshal([]byte(out), &insp); err != nil || len(insp) != 1 || insp[0]["id"] != id {
		t.Fatalf("inspect: %v %s", err, out)
	}
	if cfg := insp[0]["config"].(map[string]any); cfg["Cmd"].([]any)[0] != "sh" {
		t.Fatalf("inspect config: %v", cfg)
	}

	if out, err := runImageCLI(t, root, "image", "check"); err != nil || !strings.Contains(out, "clean") {
		t.Fatalf("check: %q %v", out, err)
	}
	saved := filepath.Join(t.TempDir(), "saved.tar")
	if _, err := runImageCLI(t, root, "image", "save", "-o", saved, "busybox"); err != nil {
		t.Fatal(err)
	}
	out, err = runImageCLI(t, root, "image", "rm", "busybox")
	if err != nil || !strings.Contains(out, "Untagged: docker.io/library/busybox:latest\nDeleted: "+id) {
		t.Fatalf("rm: %q %v", out, err)
	}
	out, err = runImageCLI(t, root, "image", "prune")
	if err != nil || !strings.Contains(out, "Removed 1 layers") {
		t.Fatalf("prune: %q %v", out, err)
	}
	out, err = runImageCLI(t, root, "image", "load", "-i", saved)
	if err != nil || !strings.Contains(out, "Loaded image: docker.io/library/busybox:latest") {
		t.Fatalf("load: %q %v", out, err)
	}
	if out, err := runImageCLI(t, root, "image", "inspect", "busybox:latest"); err != nil || !strings.Contains(out, id) {
		t.Fatalf("inspect after load: %v", err)
	}

	// A corrupted blob is found.
	blobs, _ := filepath.Glob(filepath.Join(root, "images", "blobs", "sha256", "*"))
	if len(blobs) == 0 {
		t.Fatal("no blobs")
	}
	os.WriteFile(blobs[0], []byte("corrupt"), 0o600)
	if out, err := runImageCLI(t, root, "image", "check"); err == nil || !strings.Contains(out, "content hashes to") {
		t.Fatalf("check on a corrupt store: %q %v", out, err)
	}

	// Errors a person can act on.
	for _, args := range [][]string{
		{"image", "inspect", "nothere"},
		{"image", "rm", "nothere"},
		{"image", "load"},
		{"image", "save", "busybox"},
		{"image", "import", "/nonexistent.tar", "x:1"},
		{"image", "ls", "--format", "yaml"},
		{"image", "pull", "UPPER/case"},
		{"image", "pull", "--platform", "linux", "busybox"},
	} {
		if _, err := runImageCLI(t, root, args...); err == nil {
			t.Errorf("berth %s: no error", strings.Join(args, " "))
		}
	}
	if _, err := runImageCLI(t, root, "image", "inspect", "nothere"); err == nil || !strings.Contains(err.Error(), "image not found") {
		t.Errorf("inspect missing: %v", err)
	}
}
