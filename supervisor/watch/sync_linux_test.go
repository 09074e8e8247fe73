package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/supervisor/runtime"
)

func readOr(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSyncFilesDeletesAndDirs(t *testing.T) {
	host, rootfs := t.TempDir(), t.TempDir()
	tg := &Target{Container: "c", Root: rootfs, UID: os.Getuid(), GID: os.Getgid()}
	write(t, filepath.Join(host, "index.html"), "v1")
	write(t, filepath.Join(host, "sub/deep/a.txt"), "a")
	if err := os.Symlink("index.html", filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	res, err := tg.Sync(host, "/srv/www", []string{"index.html", "sub", "sub/deep", "sub/deep/a.txt", "link"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 3 || res.Dirs != 4 {
		t.Errorf("result %+v, want 3 written and 4 dirs (srv, www, sub, deep)", res)
	}
	if got := readOr(t, filepath.Join(rootfs, "srv/www/index.html")); got != "v1" {
		t.Errorf("index.html = %q", got)
	}
	if got := readOr(t, filepath.Join(rootfs, "srv/www/sub/deep/a.txt")); got != "a" {
		t.Errorf("sub/deep/a.txt = %q", got)
	}
	if l, err := os.Readlink(filepath.Join(rootfs, "srv/www/link")); err != nil || l != "index.html" {
		t.Errorf("link = %q, %v", l, err)
	}

	// Edit, delete a file and a directory.
	write(t, filepath.Join(host, "index.html"), "v2")
	os.RemoveAll(filepath.Join(host, "sub"))
	res, err = tg.Sync(host, "/srv/www", []string{"index.html", "sub", "never-existed"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 1 || res.Deleted != 1 {
		t.Errorf("result %+v, want 1 written 1 deleted", res)
	}
	if got := readOr(t, filepath.Join(rootfs, "srv/www/index.html")); got != "v2" {
		t.Errorf("index.html = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "srv/www/sub")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sub still there: %v", err)
	}
	// No temp files left behind.
	ents, _ := os.ReadDir(filepath.Join(rootfs, "srv/www"))
	for _, e := range ents {
		if e.Name() != "index.html" && e.Name() != "link" {
			t.Errorf("left over: %s", e.Name())
		}
	}
}

func TestSyncFullCompareSkipsEqualAndIgnores(t *testing.T) {
	host, rootfs := t.TempDir(), t.TempDir()
	tg := &Target{Root: rootfs, UID: os.Getuid(), GID: os.Getgid()}
	write(t, filepath.Join(host, "a.txt"), "a")
	write(t, filepath.Join(host, "node_modules/x.js"), "x")
	write(t, filepath.Join(host, ".a.txt.swp"), "swap")
	m, _ := NewMatcher([]string{"node_modules"}, nil)
	res, err := tg.Sync(host, "/app", []string{"."}, m, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 1 {
		t.Errorf("first full sync wrote %d, want 1", res.Written)
	}
	for _, p := range []string{"app/node_modules", "app/.a.txt.swp"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err == nil {
			t.Errorf("%s synced though ignored", p)
		}
	}
	res, err = tg.Sync(host, "/app", []string{"."}, m, true)
	if err != nil || res.Written != 0 {
		t.Errorf("second full sync: %+v, %v (want nothing written)", res, err)
	}
}

func TestSyncSingleFileRoot(t *testing.T) {
	dir, rootfs := t.TempDir(), t.TempDir()
	f := filepath.Join(dir, "app.conf")
	write(t, f, "conf")
	tg := &Target{Root: rootfs, UID: os.Getuid(), GID: os.Getgid()}
	if _, err := tg.Sync(f, "/etc/app.conf", []string{"."}, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := readOr(t, filepath.Join(rootfs, "etc/app.conf")); got != "conf" {
		t.Errorf("app.conf = %q", got)
	}
}

// A symlink in the container never leads a write or a delete out of its
// root: absolute and ../ links resolve inside it.
func TestSyncSymlinkEscape(t *testing.T) {
	host, rootfs, outside := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, filepath.Join(outside, "victim.txt"), "keep")
	write(t, filepath.Join(host, "victim.txt"), "evil")
	write(t, filepath.Join(host, "x/victim.txt"), "evil")
	// /app -> the outside dir by absolute host path; /app/x -> ../../..
	if err := os.Symlink(outside, filepath.Join(rootfs, "app")); err != nil {
		t.Fatal(err)
	}
	// Inside the container the link leads to a directory of its own.
	if err := os.MkdirAll(filepath.Join(rootfs, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	tg := &Target{Root: rootfs, UID: os.Getuid(), GID: os.Getgid()}
	if _, err := tg.Sync(host, "/app", []string{"victim.txt", "x"}, nil, false); err != nil {
		t.Logf("sync: %v", err)
	}
	if got := readOr(t, filepath.Join(outside, "victim.txt")); got != "keep" {
		t.Fatalf("outside file overwritten: %q", got)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("outside dir gained entries: %v", ents)
	}
	// The write landed inside the root, where the link leads there.
	if got := readOr(t, filepath.Join(rootfs, outside, "victim.txt")); got != "evil" {
		t.Errorf("in-root target = %q", got)
	}

	// Relative escape and delete through a link.
	rootfs2 := t.TempDir()
	if err := os.Symlink("../../../../../../../../"+outside, filepath.Join(rootfs2, "app")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(host, "victim.txt"))
	tg2 := &Target{Root: rootfs2, UID: os.Getuid(), GID: os.Getgid()}
	if _, err := tg2.Sync(host, "/app", []string{"victim.txt"}, nil, false); err != nil {
		t.Logf("sync: %v", err)
	}
	if got := readOr(t, filepath.Join(outside, "victim.txt")); got != "keep" {
		t.Fatalf("outside file deleted through a relative link: %q", got)
	}
}

func TestSyncIntoBindMount(t *testing.T) {
	host, rootfs, vol := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, filepath.Join(host, "data/a.txt"), "a")
	tg := &Target{Root: rootfs, UID: os.Getuid(), GID: os.Getgid(),
		Mounts: []Mount{{Destination: "/app/data", Source: vol, Bind: true}, {Destination: "/tmp", Bind: false}}}
	if _, err := tg.Sync(host, "/app", []string{"data"}, nil, true); err != nil {
		t.Fatal(err)
	}
	if got := readOr(t, filepath.Join(vol, "a.txt")); got != "a" {
		t.Errorf("volume a.txt = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "app/data/a.txt")); err == nil {
		t.Error("written under the mount point in the rootfs, not into the mount")
	}
	// A tmpfs mount without a running container cannot be reached.
	if _, err := tg.Sync(host, "/tmp", []string{"data"}, nil, false); err == nil {
		t.Error("sync under a tmpfs mount of a stopped container succeeded")
	}
}

// Ownership follows the container's user (needs root to chown).
func TestSyncOwnership(t *testing.T) {
	requirePrivileged(t)
	host, rootfs := t.TempDir(), t.TempDir()
	write(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nwww:x:1234:2345:www:/srv:/bin/false\n")
	write(t, filepath.Join(rootfs, "etc/group"), "root:x:0:\nweb:x:3456:\n")
	write(t, filepath.Join(host, "d/f.txt"), "f")
	for _, c := range []struct {
		user     string
		uid, gid int
	}{{"www", 1234, 2345}, {"www:web", 1234, 3456}, {"777", 777, 0}, {"", 0, 0}} {
		uid, gid, err := runtime.UserInRoot(rootfs, c.user)
		if err != nil || uid != c.uid || gid != c.gid {
			t.Fatalf("UserInRoot(%q) = %d, %d, %v", c.user, uid, gid, err)
		}
	}
	if _, _, err := runtime.UserInRoot(rootfs, "nobody-here"); err == nil {
		t.Error("unknown user resolved")
	}
	tg := &Target{Root: rootfs, UID: 1234, GID: 2345}
	if _, err := tg.Sync(host, "/srv", []string{"d"}, nil, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"srv/d", "srv/d/f.txt"} {
		fi, err := os.Lstat(filepath.Join(rootfs, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 2345 {
			t.Errorf("%s owned by %d:%d, want 1234:2345", p, st.Uid, st.Gid)
		}
	}
	// As root (uid 0) the files are root's.
	write(t, filepath.Join(host, "d/g.txt"), "g")
	tg0 := &Target{Root: rootfs}
	if _, err := tg0.Sync(host, "/srv", []string{"d/g.txt"}, nil, false); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(filepath.Join(rootfs, "srv/d/g.txt"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("g.txt owned by %d:%d, want 0:0", st.Uid, st.Gid)
	}
}

func TestSyncReplacesTypeChanges(t *testing.T) {
	host, rootfs := t.TempDir(), t.TempDir()
	tg := &Target{Root: rootfs, UID: os.Getuid(), GID: os.Getgid()}
	// Container has a directory where the host has a file, and a file
	// where the host has a directory.
	write(t, filepath.Join(rootfs, "app/x/inner.txt"), "old")
	write(t, filepath.Join(rootfs, "app/y"), "old file")
	write(t, filepath.Join(host, "x"), "now a file")
	write(t, filepath.Join(host, "y/z.txt"), "z")
	if _, err := tg.Sync(host, "/app", []string{"x", "y", "y/z.txt"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := readOr(t, filepath.Join(rootfs, "app/x")); got != "now a file" {
		t.Errorf("x = %q", got)
	}
	if got := readOr(t, filepath.Join(rootfs, "app/y/z.txt")); got != "z" {
		t.Errorf("y/z.txt = %q", got)
	}
}

// BenchmarkSync100Files syncs a batch of 100 changed 4 KiB files into a
// container root (a plain directory here): the syncer's own cost per
// batch, without the watcher's quiet period.
func BenchmarkSync100Files(b *testing.B) {
	host, rootfs := b.TempDir(), b.TempDir()
	data := make([]byte, 4096)
	var paths []string
	for i := range 100 {
		p := fmt.Sprintf("d%d/f%d.txt", i%10, i)
		write(b, filepath.Join(host, p), string(data))
		paths = append(paths, p)
	}
	tg := &Target{Root: rootfs, UID: os.Getuid(), GID: os.Getgid()}
	b.ResetTimer()
	for range b.N {
		if _, err := tg.Sync(host, "/app", paths, nil, false); err != nil {
			b.Fatal(err)
		}
	}
}
