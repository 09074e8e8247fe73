package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// escapeSetup makes base/layer (empty) and base/sentinel (with a file) and
// returns base.
func escapeSetup(t testing.TB) (base string) {
	base = t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "layer"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "sentinel", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "sentinel", "file"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	return base
}

// assertContained checks nothing changed beside the layer directory.
func assertContained(t testing.TB, base, before string) {
	t.Helper()
	if got := treeHash(t, filepath.Join(base, "sentinel")); got != before {
		t.Fatalf("sentinel directory beside the layer was modified")
	}
	ents, _ := os.ReadDir(base)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"layer", "sentinel"}) {
		t.Fatalf("entries beside the layer: %v, want [layer sentinel]", names)
	}
}

func TestUnpackEscapes(t *testing.T) {
	cases := map[string]func(sentinel string) []tarEntry{
		"dotdot": func(string) []tarEntry {
			return []tarEntry{{name: "../sentinel/file", body: "pwned"}, {name: "../../x", body: "pwned"}}
		},
		"absolute name": func(s string) []tarEntry {
			return []tarEntry{{name: s + "/file", body: "pwned"}}
		},
		"absolute symlink dir": func(s string) []tarEntry {
			return []tarEntry{{name: "evil", typ: tar.TypeSymlink, link: s}, {name: "evil/file", body: "pwned"}, {name: "evil/new", body: "pwned"}}
		},
		"relative symlink dir": func(string) []tarEntry {
			return []tarEntry{{name: "evil", typ: tar.TypeSymlink, link: "../sentinel"}, {name: "evil/file", body: "pwned"}}
		},
		"deep relative symlink": func(string) []tarEntry {
			return []tarEntry{{name: "a/b/", typ: tar.TypeDir}, {name: "a/b/evil", typ: tar.TypeSymlink, link: "../../../../../../sentinel"},
				{name: "a/b/evil/sub/x", body: "pwned"}}
		},
		"symlink swapped under later entry": func(s string) []tarEntry {
			return []tarEntry{{name: "a/", typ: tar.TypeDir}, {name: "a/x", body: "ok"},
				{name: "a", typ: tar.TypeSymlink, link: s}, {name: "a/file", body: "pwned"}, {name: "a/y", body: "pwned"}}
		},
		"symlink then file over it": func(s string) []tarEntry {
			return []tarEntry{{name: "f", typ: tar.TypeSymlink, link: s + "/file"}, {name: "f", body: "replaced, not written through"}}
		},
		"hardlink to outside": func(s string) []tarEntry {
			return []tarEntry{{name: "h", typ: tar.TypeLink, link: "../sentinel/file"}, {name: "h2", typ: tar.TypeLink, link: s + "/file"}}
		},
		"hardlink via symlink": func(s string) []tarEntry {
			return []tarEntry{{name: "l", typ: tar.TypeSymlink, link: s}, {name: "h", typ: tar.TypeLink, link: "l/file"}, {name: "h", body: "pwned"}}
		},
		"hardlink to symlink then write": func(s string) []tarEntry {
			return []tarEntry{{name: "l", typ: tar.TypeSymlink, link: s + "/file"}, {name: "h", typ: tar.TypeLink, link: "l"}, {name: "h", body: "pwned"}}
		},
		"dir entry through symlink": func(s string) []tarEntry {
			return []tarEntry{{name: "d", typ: tar.TypeSymlink, link: s}, {name: "d/sub/", typ: tar.TypeDir, mode: 0o700}, {name: "d/", typ: tar.TypeDir, mode: 0o700}}
		},
		"fifo through symlink": func(s string) []tarEntry {
			return []tarEntry{{name: "d", typ: tar.TypeSymlink, link: "/../sentinel"}, {name: "d/fifo", typ: tar.TypeFifo}}
		},
		"whiteout through symlink": func(s string) []tarEntry {
			return []tarEntry{{name: "d", typ: tar.TypeSymlink, link: s}, {name: "d/.wh.file", typ: tar.TypeReg}, {name: "d/.wh..wh..opq"}}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			base := escapeSetup(t)
			sentinel := filepath.Join(base, "sentinel")
			before := treeHash(t, sentinel)
			_, err := unpackTar(bytes.NewReader(makeTar(t, mk(sentinel))), filepath.Join(base, "layer"))
			t.Logf("unpack: %v", err) // refusing is fine; escaping is not
			assertContained(t, base, before)
		})
	}
}

func TestUnpackSymlinkOverwriteReplacesLink(t *testing.T) {
	base := escapeSetup(t)
	sentinel := filepath.Join(base, "sentinel")
	layer := filepath.Join(base, "layer")
	_, err := unpackTar(bytes.NewReader(makeTar(t, []tarEntry{
		{name: "f", typ: tar.TypeSymlink, link: sentinel + "/file"}, {name: "f", body: "new"},
		{name: "dotdot/../../top", body: "clamped"},
	})), layer)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(layer, "f")); got != "new" {
		t.Fatalf("f = %q", got)
	}
	if got := readFile(t, filepath.Join(layer, "top")); got != "clamped" {
		t.Fatalf("top = %q", got)
	}
}

func TestUnpackCompressions(t *testing.T) {
	entries := []tarEntry{{name: "dir/", typ: tar.TypeDir}, {name: "dir/file", body: "hello"}, {name: "link", typ: tar.TypeSymlink, link: "dir/file"}}
	plain := makeTar(t, entries)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	want := newDigestReader(bytes.NewReader(plain))
	bytes.NewBuffer(nil).ReadFrom(want)
	for name, b := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			diffID, err := unpackTar(bytes.NewReader(b), dir)
			if err != nil {
				t.Fatal(err)
			}
			if diffID != want.digest() {
				t.Fatalf("diffID %s, want %s", diffID, want.digest())
			}
			if got := readFile(t, filepath.Join(dir, "link")); got != "hello" {
				t.Fatalf("link reads %q", got)
			}
		})
	}
}

func TestUnpackBadInput(t *testing.T) {
	for name, b := range map[string][]byte{
		"garbage":             []byte("this is not a tar archive at all, not even close......"),
		"bad gzip":            {0x1f, 0x8b, 0x08, 0, 1, 2, 3},
		"truncated":           makeTar(t, []tarEntry{{name: "f", body: "0123456789"}})[:515],
		"hardlink to missing": makeTar(t, []tarEntry{{name: "h", typ: tar.TypeLink, link: "nothere"}}),
		"hardlink to dir":     makeTar(t, []tarEntry{{name: "d/", typ: tar.TypeDir}, {name: "h", typ: tar.TypeLink, link: "d"}}),
		"root as file":        makeTar(t, []tarEntry{{name: "/.", body: "x"}}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := unpackTar(bytes.NewReader(b), t.TempDir()); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestUnpackModesTimesHardlinks(t *testing.T) {
	mt := time.Unix(1600000000, 123000000)
	dir := t.TempDir()
	_, err := unpackTar(bytes.NewReader(makeTar(t, []tarEntry{
		{name: "ro/", typ: tar.TypeDir, mode: 0o555, mtime: mt},
		{name: "ro/file", body: "x", mode: 0o640, mtime: mt},
		{name: "ro/hard", typ: tar.TypeLink, link: "ro/file"},
		{name: "exe", body: "#!/bin/sh\n", mode: 0o755, mtime: mt},
		{name: "sym", typ: tar.TypeSymlink, link: "exe", mtime: mt},
		{name: "implicit/parent/file", body: "y"},
	})), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Join(dir, "ro"), 0o755)
	check := func(p string, mode os.FileMode) os.FileInfo {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if mode != 0 && fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
		}
		return fi
	}
	for _, p := range []string{"ro", "ro/file", "exe", "sym"} {
		if fi := check(p, 0); !fi.ModTime().Equal(mt) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), mt)
		}
	}
	check("ro", os.ModeDir|0o555)
	check("ro/file", 0o640)
	check("exe", 0o755)
	check("implicit/parent", os.ModeDir|0o755)
	var sa, sb unix.Stat_t
	unix.Lstat(filepath.Join(dir, "ro/file"), &sa)
	unix.Lstat(filepath.Join(dir, "ro/hard"), &sb)
	if sa.Ino != sb.Ino {
		t.Errorf("hardlink is not the same inode")
	}
}

func TestUnpackPrivileged(t *testing.T) {
	requirePrivileged(t)
	dir := t.TempDir()
	_, err := unpackTar(bytes.NewReader(makeTar(t, []tarEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "owned", body: "x", uid: 1234, gid: 5678, mode: 0o4755},
		{name: "dev/", typ: tar.TypeDir},
		{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		{name: "dev/sda", typ: tar.TypeBlock, major: 8, minor: 0, mode: 0o660, gid: 6},
		{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: "xattr", body: "x", xattrs: map[string]string{"user.berth": "yes", "trusted.overlay.redirect": "/forged"}},
		{name: "gone/", typ: tar.TypeDir},
		{name: "gone/.wh.victim"},
		{name: "opq/", typ: tar.TypeDir},
		{name: "opq/.wh..wh..opq"},
		{name: "opq/kept", body: "k"},
		{name: "symown", typ: tar.TypeSymlink, link: "owned", uid: 42, gid: 43},
		{name: ".wh..wh.plnk/", typ: tar.TypeDir}, {name: ".wh..wh.aufs"}, {name: ".wh..wh.plnk/1.2", body: "x"},
	})), dir)
	if err != nil {
		t.Fatal(err)
	}
	st := func(p string) unix.Stat_t {
		t.Helper()
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := st("owned"); s.Uid != 1234 || s.Gid != 5678 || s.Mode&0o7777 != 0o4755 {
		t.Errorf("owned: uid %d gid %d mode %o", s.Uid, s.Gid, s.Mode&0o7777)
	}
	if s := st("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(s.Rdev) != 1 || unix.Minor(s.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d:%d", s.Mode, unix.Major(s.Rdev), unix.Minor(s.Rdev))
	}
	if s := st("dev/sda"); s.Mode&unix.S_IFMT != unix.S_IFBLK || s.Gid != 6 {
		t.Errorf("dev/sda: mode %o gid %d", s.Mode, s.Gid)
	}
	if s := st("fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", s.Mode)
	}
	if s := st("gone/victim"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d, want char 0/0", s.Mode, s.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(dir, "gone/.wh.victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".wh. file left in the layer")
	}
	for _, p := range []string{".wh..wh.plnk", ".wh..wh.aufs"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("AUFS metadata %s unpacked: %v", p, err)
		}
	}
	if s := st("symown"); s.Uid != 42 || s.Gid != 43 {
		t.Errorf("symlink owner %d:%d", s.Uid, s.Gid)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "opq"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(dir, "xattr"), "user.berth", buf); err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir, "xattr"), "trusted.overlay.redirect", buf); err == nil {
		t.Errorf("trusted.overlay.* xattr taken from the tar")
	}
}

// An ordinary user cannot unpack a whiteout: ErrNeedRoot. As root the
// test runs itself again as nobody (a copy of the test binary nobody may
// execute, in a directory nobody may write).
func TestUnpackUnprivilegedNeedsRoot(t *testing.T) {
	layer := makeTar(t, []tarEntry{{name: "d/.wh.x"}})
	if os.Geteuid() != 0 {
		_, err := unpackTar(bytes.NewReader(layer), t.TempDir())
		if !errors.Is(err, ErrNeedRoot) {
			t.Fatalf("err = %v, want ErrNeedRoot", err)
		}
		return
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin, work, tarPath := filepath.Join(dir, "image.test"), filepath.Join(dir, "work"), filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tarPath, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"BERTH_IMAGE_CHILD=unprivileged-unpack", "BERTH_IMAGE_LAYER=" + tarPath, "BERTH_IMAGE_DIR=" + work}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

// unprivilegedUnpackChild unpacks BERTH_IMAGE_LAYER into BERTH_IMAGE_DIR
// and exits 0 only on ErrNeedRoot (see TestMain).
func unprivilegedUnpackChild() {
	f, err := os.Open(os.Getenv("BERTH_IMAGE_LAYER"))
	if err == nil {
		_, err = unpackTar(f, os.Getenv("BERTH_IMAGE_DIR"))
	}
	if os.Geteuid() == 0 || !errors.Is(err, ErrNeedRoot) {
		fmt.Fprintf(os.Stderr, "euid %d: err = %v, want ErrNeedRoot\n", os.Geteuid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}
