package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// containerID makes a container id unique to this process and test.
func containerID(t testing.TB, name string) string {
	return fmt.Sprintf("%s-%d-%s", name, os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
}

func isMountpoint(t testing.TB, p string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

// prepare is Prepare with a cleanup registered even when the test fails.
func prepare(t testing.TB, s *Store, id string, im *Image) (string, func() error) {
	t.Helper()
	rootfs, cleanup, err := s.Prepare(id, im)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Cleanup(func() { cleanup() })
	return rootfs, cleanup
}

func layeredImage(t testing.TB) v1.Image {
	l1 := tarLayer(t, []tarEntry{
		{name: "etc/", typ: tar.TypeDir}, {name: "etc/hostname", body: "base"},
		{name: "a", body: "A"}, {name: "keep", body: "K"},
		{name: "d/", typ: tar.TypeDir}, {name: "d/old", body: "old"},
	})
	l2 := tarLayer(t, []tarEntry{
		{name: ".wh.a"},
		{name: "d/", typ: tar.TypeDir}, {name: "d/.wh..wh..opq"}, {name: "d/new", body: "new"},
		{name: "etc/", typ: tar.TypeDir}, {name: "etc/hostname", body: "top"},
	})
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPrepareOverlay(t *testing.T) {
	requirePrivileged(t)
	reg := newTestRegistry(t, nil)
	reg.push(t, reg.ref("layered:1"), layeredImage(t))
	s := openTestStore(t)
	im := pull(t, s, reg.ref("layered:1"), PullOptions{})
	id := containerID(t, "c1")
	rootfs, cleanup := prepare(t, s, id, im)
	if !isMountpoint(t, rootfs) {
		t.Fatalf("%s is not mounted", rootfs)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("whited-out file visible: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "d/old")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file under opaque dir visible: %v", err)
	}
	for p, want := range map[string]string{"keep": "K", "d/new": "new", "etc/hostname": "top"} {
		if got := readFile(t, filepath.Join(rootfs, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// Writes go to the container's upper dir only.
	before := map[string]string{}
	for _, l := range im.Layers {
		before[l.DiffID] = treeHash(t, s.layerPath(l.DiffID))
	}
	if err := os.WriteFile(filepath.Join(rootfs, "written"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "keep"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(rootfs, "etc/hostname")); err != nil {
		t.Fatal(err)
	}
	upper := filepath.Join(s.Root(), "containers", id, "upper")
	if got := readFile(t, filepath.Join(upper, "written")); got != "w" {
		t.Errorf("upper/written = %q", got)
	}
	for _, l := range im.Layers {
		if treeHash(t, s.layerPath(l.DiffID)) != before[l.DiffID] {
			t.Errorf("layer %s changed by container writes", l.DiffID)
		}
	}
	// A second container sees the image, not the first one's writes.
	rootfs2, _ := prepare(t, s, containerID(t, "c2"), im)
	if got := readFile(t, filepath.Join(rootfs2, "keep")); got != "K" {
		t.Errorf("second container sees keep = %q", got)
	}
	// Prepare again: same mount, writes kept.
	again, _, err := s.Prepare(id, im)
	if err != nil || again != rootfs {
		t.Fatalf("re-prepare: %s %v", again, err)
	}
	if err := s.Unmount(id); err != nil {
		t.Fatal(err)
	}
	if isMountpoint(t, rootfs) {
		t.Fatal("still mounted after Unmount")
	}
	prepare(t, s, id, im)
	if got := readFile(t, filepath.Join(rootfs, "written")); got != "w" {
		t.Errorf("after remount written = %q", got)
	}
	mustCheck(t, s)
	// Prune keeps the layers of a prepared container even when its image
	// is gone.
	if _, err := s.Remove(reg.ref("layered:1")); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Prune(); err != nil || rep.Layers != 0 {
		t.Fatalf("prune with containers prepared: %+v %v", rep, err)
	}
	mustCheck(t, s)
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	if isMountpoint(t, rootfs) {
		t.Fatal("still mounted after cleanup")
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "containers", id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("container dir left: %v", err)
	}
	if err := cleanup(); err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
	if err := s.Release(containerID(t, "c2")); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Prune(); err != nil || rep.Layers != 2 {
		t.Fatalf("prune after release: %+v %v", rep, err)
	}
}

func TestPrepareManyLayers(t *testing.T) {
	requirePrivileged(t)
	reg := newTestRegistry(t, nil)
	reg.push(t, reg.ref("deep:150"), randomImage(t, 64, 150))
	s := openTestStore(t)
	im := pull(t, s, reg.ref("deep:150"), PullOptions{})
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			testForceLegacyMount = legacy
			defer func() { testForceLegacyMount = false }()
			rootfs, _ := prepare(t, s, containerID(t, "deep"), im)
			ents, err := os.ReadDir(rootfs)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 150 {
				t.Fatalf("rootfs has %d entries, want one file from each of 150 layers", len(ents))
			}
		})
	}
}

// TestPrepareMountPoints: the files of /etc that containers get as bind
// mounts are in every rootfs from the start, from one shared layer, so that
// nothing is copied up into a container's upper directory for them; what
// the image has of them, and its /etc, stay as they are.
func TestPrepareMountPoints(t *testing.T) {
	requirePrivileged(t)
	reg := newTestRegistry(t, nil)
	image := func(name string, layers ...[]tarEntry) {
		var ls []v1.Layer
		for _, l := range layers {
			ls = append(ls, tarLayer(t, l))
		}
		img, err := mutate.AppendLayers(empty.Image, ls...)
		if err != nil {
			t.Fatal(err)
		}
		reg.push(t, reg.ref(name), img)
	}
	image("bare:1", []tarEntry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/app", body: "x"}})
	image("owned:1",
		[]tarEntry{{name: "etc/", typ: tar.TypeDir, mode: 0o750, uid: 7, gid: 8},
			{name: "etc/hosts", body: "image hosts"}, {name: "etc/resolv.conf", body: "gone"}},
		[]tarEntry{{name: "etc/", typ: tar.TypeDir, mode: 0o2750, uid: 7, gid: 8}, {name: "etc/.wh.resolv.conf"}})
	image("link:1", []tarEntry{{name: "private/", typ: tar.TypeDir}, {name: "private/etc/", typ: tar.TypeDir},
		{name: "etc", typ: tar.TypeSymlink, link: "private/etc"}})
	image("complete:1", []tarEntry{{name: "etc/", typ: tar.TypeDir},
		{name: "etc/hosts", body: "h"}, {name: "etc/hostname", body: "n"}, {name: "etc/resolv.conf", body: "r"}})
	s := openTestStore(t)

	type file struct {
		mode     os.FileMode
		uid, gid uint32
		body     string
	}
	stat := func(p string) (file, bool) {
		t.Helper()
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return file{}, false
		}
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		f := file{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
		if fi.Mode().IsRegular() {
			f.body = readFile(t, p)
		}
		return f, true
	}
	empty := file{mode: 0o644}
	for _, tc := range []struct {
		ref    string
		etc    file
		files  map[string]file // absent: the file must not exist
		shared string          // the mount-point layer, "" for none
	}{
		{"bare:1", file{mode: os.ModeDir | 0o755}, map[string]file{"hosts": empty, "hostname": empty, "resolv.conf": empty}, "init/0755-0-0-7"},
		{"owned:1", file{mode: os.ModeDir | os.ModeSetgid | 0o750, uid: 7, gid: 8},
			map[string]file{"hosts": {mode: 0o644, body: "image hosts"}, "hostname": empty, "resolv.conf": empty}, "init/2750-7-8-6"},
		{"link:1", file{mode: os.ModeSymlink | 0o777}, nil, ""},
		{"complete:1", file{mode: os.ModeDir | 0o755},
			map[string]file{"hosts": {mode: 0o644, body: "h"}, "hostname": {mode: 0o644, body: "n"}, "resolv.conf": {mode: 0o644, body: "r"}}, ""},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			im := pull(t, s, reg.ref(tc.ref), PullOptions{})
			for _, legacy := range []bool{false, true} {
				testForceLegacyMount = legacy
				rootfs, cleanup, err := s.PrepareContainer(containerID(t, fmt.Sprintf("mp-%v", legacy)), im)
				testForceLegacyMount = false
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cleanup() })
				if got, _ := stat(filepath.Join(rootfs, "etc")); got != tc.etc {
					t.Errorf("legacy=%v: /etc is %+v, want %+v", legacy, got, tc.etc)
				}
				for _, name := range mountPointFiles {
					got, ok := stat(filepath.Join(rootfs, "etc", name))
					want, wantOK := tc.files[name]
					if ok != wantOK || got != want {
						t.Errorf("legacy=%v: /etc/%s is %+v (exists %v), want %+v (exists %v)", legacy, name, got, ok, want, wantOK)
					}
				}
				// The layer is a lower one: the container's own
				// directory has nothing of it.
				upper := filepath.Join(filepath.Dir(rootfs), "upper")
				if ents, err := os.ReadDir(upper); err != nil || len(ents) != 0 {
					t.Errorf("legacy=%v: upper dir holds %v (%v)", legacy, ents, err)
				}
			}
			layers, _ := filepath.Glob(filepath.Join(s.Root(), "init", "*"))
			if want := filepath.Join(s.Root(), tc.shared); tc.shared != "" && !slices.Contains(layers, want) {
				t.Errorf("mount-point layers %v, want %s among them", layers, want)
			}
		})
	}
	// Eight containers: two layers in all. A plain Prepare (a build step)
	// gets the image's files only.
	if layers, _ := filepath.Glob(filepath.Join(s.Root(), "init", "*")); len(layers) != 2 {
		t.Errorf("mount-point layers %v, want 2", layers)
	}
	rootfs, _ := prepare(t, s, containerID(t, "plain"), pull(t, s, reg.ref("bare:1"), PullOptions{}))
	if _, err := os.Lstat(filepath.Join(rootfs, "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Prepare made /etc: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ left with %v", ents)
	}
	mustCheck(t, s)
}

func TestPrepareBadInput(t *testing.T) {
	s := openTestStore(t)
	im := &Image{ID: "sha256:" + strings.Repeat("0", 64), Layers: []Layer{{DiffID: "sha256:" + strings.Repeat("1", 64)}}}
	for _, id := range []string{"", "..", "a/b", strings.Repeat("x", 200)} {
		if _, _, err := s.Prepare(id, im); err == nil {
			t.Errorf("Prepare(%q) accepted", id)
		}
	}
	if _, _, err := s.Prepare("ok", im); err == nil || !strings.Contains(err.Error(), "not in the store") {
		t.Errorf("missing layer: %v", err)
	}
	if _, _, err := s.Prepare("ok", &Image{}); err == nil {
		t.Errorf("no layers accepted")
	}
}

func TestPrepareRepeatedLayer(t *testing.T) {
	requirePrivileged(t)
	base := tarLayer(t, []tarEntry{{name: "f", body: "base"}})
	mid := tarLayer(t, []tarEntry{{name: "f", body: "mid"}, {name: "m", body: "m"}})
	img, err := mutate.AppendLayers(empty.Image, base, mid, base)
	if err != nil {
		t.Fatal(err)
	}
	reg := newTestRegistry(t, nil)
	reg.push(t, reg.ref("repeat:1"), img)
	s := openTestStore(t)
	im := pull(t, s, reg.ref("repeat:1"), PullOptions{})
	if len(im.Layers) != 3 {
		t.Fatalf("%d layers", len(im.Layers))
	}
	rootfs, _ := prepare(t, s, containerID(t, "rep"), im)
	if got := readFile(t, filepath.Join(rootfs, "f")); got != "base" {
		t.Fatalf("f = %q, want the top layer's", got)
	}
	if got := readFile(t, filepath.Join(rootfs, "m")); got != "m" {
		t.Fatalf("m = %q", got)
	}
}

// busyboxEntries is a tiny rootfs: the host's static busybox with sh.
func busyboxEntries(t testing.TB) []tarEntry {
	t.Helper()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("/bin/busybox is needed (apt-get install busybox-static): %v", err)
	}
	entries := []tarEntry{
		{name: "bin/", typ: tar.TypeDir}, {name: "bin/busybox", body: string(b), mode: 0o755},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
	}
	for _, applet := range []string{"sh", "cat", "wc", "echo"} {
		entries = append(entries, tarEntry{name: "bin/" + applet, typ: tar.TypeSymlink, link: "busybox"})
	}
	return entries
}

// runIn runs a shell command chrooted into rootfs and returns its output.
func runIn(t testing.TB, rootfs, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run %q in %s: %v\n%s", script, rootfs, err, out)
	}
	return string(out)
}

func TestImportedBusyboxRuns(t *testing.T) {
	requirePrivileged(t)
	s := openTestStore(t)
	im, err := s.Import(context.Background(), writeTempFile(t, makeTar(t, busyboxEntries(t))), "busybox:test", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rootfs, cleanup := prepare(t, s, containerID(t, "bb"), im)
	if got := runIn(t, rootfs, "echo written > /tmp/x && cat /tmp/x /etc/passwd"); got != "written\nroot:x:0:0:root:/root:/bin/sh\n" {
		t.Fatalf("output %q", got)
	}
	if got := readFile(t, filepath.Join(s.Root(), "containers", containerID(t, "bb"), "upper", "tmp", "x")); got != "written\n" {
		t.Fatalf("upper/tmp/x = %q", got)
	}
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
}
