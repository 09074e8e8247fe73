package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	// Prune keeps the layers of a prepared container even when its image
	// is gone.
	if _, err := s.Remove(reg.ref("layered:1")); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Prune(); err != nil || rep.Layers != 0 {
		t.Fatalf("prune with containers prepared: %+v %v", rep, err)
	}
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
