package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
