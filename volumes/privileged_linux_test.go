package volumes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/spec"
)

// mountsUnder lists the mount points at or below dir in this mount
// namespace.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == real || strings.HasPrefix(mp, real+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// privilegedManager is a Manager in a fresh temp root that, when the test
// ends, unmounts whatever is left below it (so a failing test leaks
// nothing) and then reports the leak.
func privilegedManager(t *testing.T) (*Manager, string) {
	t.Helper()
	requirePrivileged(t)
	root := t.TempDir()
	m, err := NewForRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		left := mountsUnder(t, root)
		for i := len(left) - 1; i >= 0; i-- {
			_ = unix.Unmount(left[i], unix.MNT_DETACH)
		}
		if len(left) > 0 {
			t.Errorf("mounts leaked: %v", left)
		}
	})
	return m, root
}

// mountAsRuntime mounts mt on dir the way an OCI runtime does, and
// unmounts it when the test ends.
func mountAsRuntime(t *testing.T, mt specs.Mount, dir string) {
	t.Helper()
	flags, data := MountFlags(mt.Options)
	switch mt.Type {
	case "tmpfs":
		if err := unix.Mount("tmpfs", dir, "tmpfs", flags, data); err != nil {
			t.Fatalf("mount %+v: %v", mt, err)
		}
	case "bind":
		if err := unix.Mount(mt.Source, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			t.Fatalf("mount %+v: %v", mt, err)
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|rest, ""); err != nil {
				unix.Unmount(dir, unix.MNT_DETACH)
				t.Fatalf("remount %+v: %v", mt, err)
			}
		}
	default:
		t.Fatalf("mount type %q", mt.Type)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

func TestPrivilegedDriverBindVolume(t *testing.T) {
	m, root := privilegedManager(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hello"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &spec.Project{Name: "drv", WorkingDir: root, Volumes: []spec.Volume{
		{Name: "hb", DriverOpts: map[string]string{"type": "none", "o": "bind", "device": host}},
		{Name: "hbro", DriverOpts: map[string]string{"type": "none", "o": "bind,ro", "device": host}},
	}}
	svc := &spec.Service{Name: "a", Mounts: []spec.Mount{
		{Type: spec.MountVolume, Source: "hb", Target: "/hb"},
		{Type: spec.MountVolume, Source: "hbro", Target: "/hbro"},
	}}
	ctx := context.Background()
	mounts, rel1, err := m.Prepare(ctx, p, svc, "drv-a-1", "")
	if err != nil {
		t.Fatal(err)
	}
	data := mounts[0].Source
	if b, err := os.ReadFile(filepath.Join(data, "hello")); err != nil || string(b) != "from host" {
		t.Fatalf("bind-driver volume content: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(data, "back"), []byte("to host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "back")); string(b) != "to host" {
		t.Fatal("write through the volume did not reach the host directory")
	}
	if err := os.WriteFile(filepath.Join(mounts[1].Source, "x"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to o: bind,ro volume: %v, want EROFS", err)
	}
	// A second user shares the mount; it is not stacked.
	_, rel2, err := m.Prepare(ctx, p, svc, "drv-a-2", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(mountsUnder(t, m.Dir())); n != 2 {
		t.Fatalf("%d mounts under the volumes dir, want 2: %v", n, mountsUnder(t, m.Dir()))
	}
	if err := rel1(); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := isMountpoint(data); !mounted {
		t.Fatal("unmounted while another container uses it")
	}
	if err := rel2(); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, m.Dir()); len(left) != 0 {
		t.Fatalf("mounts left after the last release: %v", left)
	}
	// down -v removes the volume, never the host directory's content.
	if removed, err := m.RemoveProjectVolumes("drv", true); err != nil || len(removed) != 2 {
		t.Fatalf("RemoveProjectVolumes: %v, %v", removed, err)
	}
	if b, err := os.ReadFile(filepath.Join(host, "hello")); err != nil || string(b) != "from host" {
		t.Fatalf("host directory damaged by volume removal: %q, %v", b, err)
	}
}

func TestPrivilegedDriverTmpfsVolume(t *testing.T) {
	m, root := privilegedManager(t)
	p := &spec.Project{Name: "drv", WorkingDir: root, Volumes: []spec.Volume{
		{Name: "mem", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=2m,mode=0750"}},
	}}
	svc := &spec.Service{Name: "a", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "mem", Target: "/mem"}}}
	mounts, release, err := m.Prepare(context.Background(), p, svc, "drv-a-1", "")
	if err != nil {
		t.Fatal(err)
	}
	data := mounts[0].Source
	var sfs unix.Statfs_t
	if err := unix.Statfs(data, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type != unix.TMPFS_MAGIC || uint64(sfs.Blocks)*uint64(sfs.Bsize) != 2<<20 {
		t.Fatalf("volume is fs %#x with %d bytes, want a 2 MiB tmpfs", sfs.Type, uint64(sfs.Blocks)*uint64(sfs.Bsize))
	}
	if st, _ := os.Stat(data); st.Mode().Perm() != 0o750 {
		t.Fatalf("tmpfs volume mode %v", st.Mode())
	}
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, m.Dir()); len(left) != 0 {
		t.Fatalf("tmpfs volume still mounted: %v", left)
	}
	if _, err := os.Stat(filepath.Join(data, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmpfs content visible after unmount: %v", err)
	}
}

// buildImageDir makes rootfs/data with every kind of entry copy-in must
// keep, and returns a function that checks a copy of it.
func buildImageDir(t *testing.T, rootfs string) func(dst string) {
	t.Helper()
	d := filepath.Join(rootfs, "data")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(d, "file"), []byte("content"), 0o600))
	must(os.Chown(filepath.Join(d, "file"), 123, 456))
	must(os.Chmod(filepath.Join(d, "file"), 0o640))
	must(unix.Setxattr(filepath.Join(d, "file"), "user.berth", []byte("kept"), 0))
	must(os.Link(filepath.Join(d, "file"), filepath.Join(d, "hard")))
	must(os.WriteFile(filepath.Join(d, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(d, "suid"), 0o4755|os.ModeSetuid))
	must(os.Symlink("file", filepath.Join(d, "link")))
	must(os.Lchown(filepath.Join(d, "link"), 7, 8))
	must(os.Symlink("/etc/passwd", filepath.Join(d, "abs-link")))
	must(unix.Mkfifo(filepath.Join(d, "fifo"), 0o620))
	must(unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chmod(filepath.Join(d, "fifo"), 0o620)) // past the umask
	must(os.Chmod(filepath.Join(d, "null"), 0o666))
	must(os.WriteFile(filepath.Join(d, "sub", "deep.txt"), []byte("deep"), 0o600))
	must(os.Chown(filepath.Join(d, "sub"), 1000, 1000))
	must(os.Chmod(filepath.Join(d, "sub"), 0o700))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(d, "sub", "deep.txt"), old, old))
	must(os.Chtimes(filepath.Join(d, "sub"), old, old))
	must(os.Chown(d, 999, 998))
	must(os.Chmod(d, 0o751))

	return func(dst string) {
		t.Helper()
		lst := func(name string) *unix.Stat_t {
			t.Helper()
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dst, name), &st); err != nil {
				t.Fatalf("copy-in lost %s: %v", name, err)
			}
			return &st
		}
		check := func(name string, mode uint32, uid, gid uint32) {
			t.Helper()
			st := lst(name)
			if st.Mode != mode || st.Uid != uid || st.Gid != gid {
				t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", name, st.Mode, st.Uid, st.Gid, mode, uid, gid)
			}
		}
		check(".", unix.S_IFDIR|0o751, 999, 998)
		check("file", unix.S_IFREG|0o640, 123, 456)
		check("suid", unix.S_IFREG|0o4755, 0, 0)
		check("link", unix.S_IFLNK|0o777, 7, 8)
		check("fifo", unix.S_IFIFO|0o620, 0, 0)
		check("null", unix.S_IFCHR|0o666, 0, 0)
		check("sub", unix.S_IFDIR|0o700, 1000, 1000)
		check("sub/deep.txt", unix.S_IFREG|0o600, 0, 0)
		if lst("file").Ino != lst("hard").Ino {
			t.Error("hardlink not kept")
		}
		if st := lst("null"); st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("device number %d", st.Rdev)
		}
		if l, _ := os.Readlink(filepath.Join(dst, "abs-link")); l != "/etc/passwd" {
			t.Errorf("symlink target %q", l)
		}
		buf := make([]byte, 16)
		if n, err := unix.Getxattr(filepath.Join(dst, "file"), "user.berth", buf); err != nil || string(buf[:n]) != "kept" {
			t.Errorf("xattr: %q, %v", buf[:n], err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "sub", "deep.txt")); string(b) != "deep" {
			t.Errorf("content %q", b)
		}
		for _, n := range []string{"sub", "sub/deep.txt"} {
			if st := lst(n); st.Mtim.Sec != old.Unix() {
				t.Errorf("%s mtime %d, want %d", n, st.Mtim.Sec, old.Unix())
			}
		}
	}
}

func TestPrivilegedCopyInOnce(t *testing.T) {
	m, root := privilegedManager(t)
	rootfs := filepath.Join(root, "rootfs")
	check := buildImageDir(t, rootfs)
	// /alias is a symlink in the image; it resolves inside the rootfs.
	if err := os.Symlink("/data", filepath.Join(rootfs, "alias")); err != nil {
		t.Fatal(err)
	}
	p := &spec.Project{Name: "cp", WorkingDir: root, Volumes: []spec.Volume{{Name: "data"}, {Name: "alias"}, {Name: "none"}}}
	svc := &spec.Service{Name: "db", Mounts: []spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountVolume, Source: "alias", Target: "/alias"},
		{Type: spec.MountVolume, Source: "none", Target: "/data/sub", NoCopy: true},
		{Type: spec.MountVolume, Target: "/data/anon"},
	}}
	ctx := context.Background()
	_, release, err := m.Prepare(ctx, p, svc, "cp-db-1", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	release()
	check(m.dataPath("cp_data"))
	check(m.dataPath("cp_alias"))
	if empty, _ := dirEmpty(m.dataPath("cp_none")); !empty {
		t.Error("nocopy volume got content")
	}
	if v, _ := m.Inspect("cp_data"); v.CopyIn != copyDone {
		t.Errorf("copy-in state %q", v.CopyIn)
	}
	// The image changes and the user deletes a file: nothing is copied again.
	if err := os.WriteFile(filepath.Join(rootfs, "data", "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.dataPath("cp_data"), "file")); err != nil {
		t.Fatal(err)
	}
	_, release, err = m.Prepare(ctx, p, svc, "cp-db-1", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	release()
	for _, n := range []string{"new", "file"} {
		if _, err := os.Lstat(filepath.Join(m.dataPath("cp_data"), n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("second Prepare copied %s again: %v", n, err)
		}
	}
}

// copyInChild is the re-executed child of TestPrivilegedCopyInInterrupted
// (see TestMain): it starts a copy-in and kills itself with SIGKILL in the
// middle. It does not return.
func copyInChild(cfg string) {
	var c struct{ Root, Rootfs string }
	err := json.Unmarshal([]byte(cfg), &c)
	var m *Manager
	if err == nil {
		m, err = NewForRoot(c.Root)
	}
	if err == nil {
		copyHook = func(n int) {
			if n == 25 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
		_, _, err = m.Prepare(context.Background(), interruptedProject(c.Root), interruptedService(), "ci-app-1", c.Rootfs)
	}
	fmt.Fprintf(os.Stderr, "child was not killed mid-copy: %v\n", err)
	os.Exit(1)
}

func interruptedProject(root string) *spec.Project {
	return &spec.Project{Name: "ci", WorkingDir: root, Volumes: []spec.Volume{{Name: "data"}}}
}

func interruptedService() *spec.Service {
	return &spec.Service{Name: "app", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}}}
}

func TestPrivilegedCopyInInterrupted(t *testing.T) {
	m, root := privilegedManager(t)
	rootfs := filepath.Join(root, "rootfs")
	const files = 200
	if err := os.MkdirAll(filepath.Join(rootfs, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if err := os.WriteFile(filepath.Join(rootfs, "data", fmt.Sprintf("f%03d", i)), bytes.Repeat([]byte{byte(i)}, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := json.Marshal(struct{ Root, Rootfs string }{root, rootfs})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BERTH_TEST_COPYIN_CHILD="+string(cfg))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v\n%s", err, out)
	}
	data := m.dataPath("ci_data")
	v, err := m.Inspect("ci_data")
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(data)
	if v.CopyIn != copyPending || len(ents) == 0 || len(ents) >= files {
		t.Fatalf("after the crash: state %q with %d of %d files; want a pending, partial copy", v.CopyIn, len(ents), files)
	}
	// A partial file from the crash must not survive either: plant one.
	if err := os.WriteFile(filepath.Join(data, "f199"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The user of the crashed container is still recorded; Release
	// (from the supervisor's saved state) clears it.
	if err := m.Release("ci-app-1"); err != nil {
		t.Fatal(err)
	}
	_, release, err := m.Prepare(context.Background(), interruptedProject(root), interruptedService(), "ci-app-1", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ents, _ = os.ReadDir(data)
	if len(ents) != files {
		t.Fatalf("redone copy has %d files, want %d", len(ents), files)
	}
	for i := range files {
		b, err := os.ReadFile(filepath.Join(data, fmt.Sprintf("f%03d", i)))
		if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, 1000)) {
			t.Fatalf("file %d wrong after redo: %v", i, err)
		}
	}
	if v, _ := m.Inspect("ci_data"); v.CopyIn != copyDone {
		t.Fatalf("state %q after redo", v.CopyIn)
	}
}

func TestPrivilegedTmpfsSizeEnforced(t *testing.T) {
	_, root := privilegedManager(t)
	long, err := TmpfsMount("/t", 1<<20, 0o700, false)
	if err != nil {
		t.Fatal(err)
	}
	short, err := ParseTmpfs("/run:size=1m,mode=1777")
	if err != nil {
		t.Fatal(err)
	}
	for name, mt := range map[string]specs.Mount{"type: tmpfs": long, "tmpfs:": short} {
		dir, err := os.MkdirTemp(root, "tmpfs")
		if err != nil {
			t.Fatal(err)
		}
		mountAsRuntime(t, mt, dir)
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if name == "type: tmpfs" && st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", name, st.Mode())
		}
		f, err := os.Create(filepath.Join(dir, "big"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(make([]byte, 2<<20))
		f.Close()
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s: writing 2 MiB to a 1 MiB tmpfs: %v, want ENOSPC", name, err)
		}
	}
}

func TestPrivilegedReadOnlyMounts(t *testing.T) {
	m, root := privilegedManager(t)
	host := filepath.Join(root, "host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &spec.Project{Name: "ro", WorkingDir: root, Volumes: []spec.Volume{{Name: "v"}},
		Secrets: []spec.File{{Name: "pw", Content: "hunter2"}}}
	mode := uint32(0o400)
	svc := &spec.Service{Name: "s",
		Mounts: []spec.Mount{
			{Type: spec.MountBind, Source: host, Target: "/h", ReadOnly: true},
			{Type: spec.MountVolume, Source: "v", Target: "/v", ReadOnly: true},
		},
		Secrets: []spec.FileRef{{Source: "pw", UID: "1000", GID: "2000", Mode: &mode}},
	}
	mounts, release, err := m.Prepare(context.Background(), p, svc, "ro-s-1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for i, mt := range mounts {
		var dst string
		if mt.Destination == "/run/secrets/pw" {
			st, err := os.Stat(mt.Source)
			if err != nil {
				t.Fatal(err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if st.Mode().Perm() != 0o400 || sys.Uid != 1000 || sys.Gid != 2000 {
				t.Errorf("secret file mode %v owner %d:%d, want 0400 1000:2000", st.Mode(), sys.Uid, sys.Gid)
			}
			dst = filepath.Join(root, fmt.Sprintf("mnt-file-%d", i))
			if err := os.WriteFile(dst, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			dst = filepath.Join(root, fmt.Sprintf("mnt-%d", i))
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mountAsRuntime(t, mt, dst)
		var werr error
		if mt.Destination == "/run/secrets/pw" {
			var f *os.File
			if f, werr = os.OpenFile(dst, os.O_WRONLY, 0); werr == nil {
				f.Close()
			}
		} else {
			werr = os.WriteFile(filepath.Join(dst, "x"), nil, 0o644)
		}
		if !errors.Is(werr, syscall.EROFS) {
			t.Errorf("%s: write through a read-only mount: %v, want EROFS", mt.Destination, werr)
		}
	}
}

// BenchmarkPrepare10Volumes measures Prepare + release for a service with
// 10 volumes (named, anonymous, bind, tmpfs and a secret) whose mountpoints
// are made in a rootfs; after the first round the volumes exist, as on
// every `up` but the first.
func BenchmarkPrepare10Volumes(b *testing.B) {
	m := newManager(b)
	root := b.TempDir()
	rootfs := filepath.Join(root, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	p := &spec.Project{Name: "bench", WorkingDir: root, Secrets: []spec.File{{Name: "pw", Content: "x"}}}
	svc := &spec.Service{Name: "s"}
	for i := range 6 {
		key := fmt.Sprintf("v%d", i)
		p.Volumes = append(p.Volumes, spec.Volume{Name: key})
		svc.Mounts = append(svc.Mounts, spec.Mount{Type: spec.MountVolume, Source: key, Target: "/data/" + key})
	}
	svc.Mounts = append(svc.Mounts,
		spec.Mount{Type: spec.MountVolume, Target: "/anon"},
		spec.Mount{Type: spec.MountBind, Source: "./src", Target: "/src", CreateHostPath: true},
		spec.Mount{Type: spec.MountTmpfs, Target: "/tmp", TmpfsSize: 1 << 20},
	)
	uid, gid := fmt.Sprint(os.Getuid()), fmt.Sprint(os.Getgid())
	svc.Secrets = []spec.FileRef{{Source: "pw", UID: uid, GID: gid}}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		mounts, release, err := m.Prepare(ctx, p, svc, "bench-s-1", rootfs)
		if err != nil {
			b.Fatal(err)
		}
		if len(mounts) != 10 {
			b.Fatalf("%d mounts", len(mounts))
		}
		if err := release(); err != nil {
			b.Fatal(err)
		}
	}
}
