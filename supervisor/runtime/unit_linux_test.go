package runtime

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	m := parseMountOptions([]string{"rbind", "ro", "nosuid", "rprivate", "mode=755", "size=1k", "rw", "ro"})
	if !m.bind || !m.readonly || m.flags&unix.MS_REC == 0 || m.flags&unix.MS_NOSUID == 0 {
		t.Fatalf("%+v", m)
	}
	if len(m.propagation) != 1 || m.propagation[0] != unix.MS_PRIVATE|unix.MS_REC || m.dataString() != "mode=755,size=1k" {
		t.Fatalf("%+v", m)
	}
	if m := parseMountOptions([]string{"ro", "rw"}); m.readonly {
		t.Fatal("rw after ro must clear it")
	}
}

// resolveInRoot never leaves the root, whatever the symlinks say.
func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.Symlink("/etc", filepath.Join(root, "abs"))
	os.Symlink("../../../../..", filepath.Join(root, "a/up"))
	os.Symlink("b", filepath.Join(root, "a/rel"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for in, want := range map[string]string{
		"/abs/passwd":      "/etc/passwd",
		"/a/up/etc/shadow": "/etc/shadow",
		"../../x":          "/x",
		"/a/rel/c/d":       "/a/b/c/d",
		"/a/b":             "/a/b",
	} {
		got, err := resolveInRoot(fd, in, false)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := resolveInRoot(fd, "/loop/x", false); err == nil {
		t.Error("symlink loop resolved")
	}
	if _, err := resolveInRoot(fd, "/abs", true); err == nil {
		t.Error("symlink accepted with noSymlinks")
	}
	// mkdirAllInRoot creates below the root, not on the host.
	nfd, err := mkdirAllInRoot(fd, "/abs/berth-made-this", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(nfd)
	if _, err := os.Stat(filepath.Join(root, "etc/berth-made-this")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/berth-made-this"); err == nil {
		t.Fatal("created on the host")
	}
}
