package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func writeTempFile(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportSaveLoadRoundTrip(t *testing.T) {
	rootfs := writeTempFile(t, makeTar(t, []tarEntry{
		{name: "./", typ: tar.TypeDir}, {name: "bin/", typ: tar.TypeDir},
		{name: "bin/tool", body: "#!/bin/sh\necho hi\n", mode: 0o755},
		{name: "bin/alias", typ: tar.TypeSymlink, link: "tool"},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
	}))
	s := openTestStore(t)
	im, err := s.Import(context.Background(), rootfs, "busybox:latest", ImportOptions{Changes: []string{
		`CMD ["sh"]`, "ENTRYPOINT /bin/tool", "ENV PATH=/bin", "ENV A B", "WORKDIR /srv", "USER nobody",
		"EXPOSE 80 53/udp", "VOLUME /data", "LABEL org.example=yes", "STOPSIGNAL SIGINT",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(im.Names, []string{"docker.io/library/busybox:latest"}) || len(im.Layers) != 1 {
		t.Fatalf("imported %+v", im)
	}
	cfg, err := s.Config(im)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Cmd, []string{"sh"}) || !slices.Equal(cfg.Entrypoint, []string{"/bin/sh", "-c", "/bin/tool"}) ||
		!slices.Equal(cfg.Env, []string{"PATH=/bin", "A=B"}) || cfg.WorkingDir != "/srv" || cfg.User != "nobody" ||
		!slices.Equal(cfg.ExposedPorts, []string{"53/udp", "80/tcp"}) || !slices.Equal(cfg.Volumes, []string{"/data"}) ||
		cfg.Labels["org.example"] != "yes" || cfg.StopSignal != "SIGINT" || cfg.OS != "linux" {
		t.Fatalf("config %+v", cfg)
	}
	layer := s.layerPath(im.Layers[0].DiffID)
	if got := readFile(t, filepath.Join(layer, "bin/alias")); !strings.Contains(got, "echo hi") {
		t.Fatalf("imported layer: %q", got)
	}
	mustCheck(t, s)

	// Save, then load into a fresh store: same image.
	out := filepath.Join(t.TempDir(), "saved.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(f, []string{"busybox"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s2 := openTestStore(t)
	loaded, err := s2.Load(context.Background(), out, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != im.ID || !slices.Equal(loaded[0].Names, im.Names) || loaded[0].Layers[0].DiffID != im.Layers[0].DiffID {
		t.Fatalf("loaded %+v, saved %+v", loaded[0], im)
	}
	mustCheck(t, s2)
	if _, err := exec.LookPath("tar"); err == nil {
		// The saved file is a docker-save tarball.
		b, err := exec.Command("tar", "-tf", out).Output()
		if err != nil || !strings.Contains(string(b), "manifest.json") {
			t.Fatalf("saved archive: %s %v", b, err)
		}
	}
}

func TestLoadDockerSaveAndOCILayout(t *testing.T) {
	img1, img2 := randomImage(t, 1024, 2), randomImage(t, 1024, 1)
	id1, _ := img1.ConfigName()
	id2, _ := img2.ConfigName()

	// docker-save tarball of two tagged images.
	t1, _ := name.NewTag("example.com/one:1")
	t2, _ := name.NewTag("two")
	dsave := filepath.Join(t.TempDir(), "save.tar")
	if err := tarball.MultiWriteToFile(dsave, map[name.Tag]v1.Image{t1: img1, t2: img2}); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t)
	var progress strings.Builder
	ims, err := s.Load(context.Background(), dsave, "", &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(ims) != 2 {
		t.Fatalf("loaded %d images", len(ims))
	}
	for ref, want := range map[string]v1.Hash{"example.com/one:1": id1, "two": id2, "docker.io/library/two:latest": id2} {
		got, err := s.Get(ref)
		if err != nil || got.ID != want.String() {
			t.Fatalf("Get(%s) = %v %v, want %s", ref, got, err, want)
		}
	}
	if !strings.Contains(progress.String(), "Loaded image: example.com/one:1") {
		t.Fatalf("progress: %s", progress.String())
	}
	mustCheck(t, s)

	// OCI layout directory, one image named by annotation, one index.
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img1, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "example.com/layout:v1"})); err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img2, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.com/multi:v2"})); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t)
	ims, err = s2.Load(context.Background(), dir, "linux/amd64", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ims) != 2 || ims[0].ID != id1.String() || ims[1].ID != id2.String() {
		t.Fatalf("layout load: %+v", ims)
	}
	if got, err := s2.Get("example.com/multi:v2"); err != nil || got.ID != id2.String() {
		t.Fatalf("multi: %v %v", got, err)
	}
	mustCheck(t, s2)

	// The same layout as a tar.
	if _, err := exec.LookPath("tar"); err == nil {
		lt := filepath.Join(t.TempDir(), "layout.tar")
		if b, err := exec.Command("tar", "-C", dir, "-cf", lt, ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %s", b)
		}
		s3 := openTestStore(t)
		ims, err := s3.Load(context.Background(), lt, "", nil)
		if err != nil || len(ims) != 2 {
			t.Fatalf("layout tar: %v %v", ims, err)
		}
		mustCheck(t, s3)
	}
}

func TestLoadImportBadInput(t *testing.T) {
	s := openTestStore(t)
	garbage := writeTempFile(t, []byte("not a tarball"))
	if _, err := s.Load(context.Background(), garbage, "", nil); err == nil {
		t.Error("garbage loaded")
	}
	plain := writeTempFile(t, makeTar(t, []tarEntry{{name: "hello", body: "x"}}))
	if _, err := s.Load(context.Background(), plain, "", nil); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("rootfs tar loaded as an image: %v", err)
	}
	if _, err := s.Load(context.Background(), "/nonexistent", "", nil); err == nil {
		t.Error("missing file loaded")
	}
	if _, err := s.Import(context.Background(), plain, "x@sha256:"+strings.Repeat("a", 64), ImportOptions{}); err == nil {
		t.Error("import to a digest reference accepted")
	}
	if _, err := s.Import(context.Background(), plain, "x:1", ImportOptions{Changes: []string{"RUN rm -rf /"}}); err == nil {
		t.Error("unsupported change accepted")
	}
	if _, err := s.Import(context.Background(), garbage, "x:1", ImportOptions{}); err == nil {
		t.Error("garbage imported")
	}
	if err := s.Save(&strings.Builder{}, []string{"missing:1"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("save missing: %v", err)
	}
	if ims, _ := s.List(); len(ims) != 0 {
		t.Errorf("bad input left images: %v", ims)
	}
	mustCheck(t, s)
}

func TestConfigFromImage(t *testing.T) {
	img := randomImage(t, 100, 1)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"A=1"}, WorkingDir: "/app", User: "1000:1000",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}}, Volumes: map[string]struct{}{"/var/lib/x": {}}, StopSignal: "SIGQUIT",
		Labels:      map[string]string{"k": "v"},
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, Timeout: time.Second, StartPeriod: 2 * time.Second, Retries: 3},
	}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg := newTestRegistry(t, nil)
	reg.push(t, reg.ref("cfg:1"), img)
	s := openTestStore(t)
	im := pull(t, s, reg.ref("cfg:1"), PullOptions{})
	c, err := s.Config(im)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Entrypoint, []string{"/entry"}) || !slices.Equal(c.Cmd, []string{"serve"}) || c.WorkingDir != "/app" ||
		c.User != "1000:1000" || !slices.Equal(c.ExposedPorts, []string{"8080/tcp"}) || !slices.Equal(c.Volumes, []string{"/var/lib/x"}) ||
		c.StopSignal != "SIGQUIT" || c.Labels["k"] != "v" || c.Healthcheck == nil || c.Healthcheck.Interval != 5*time.Second ||
		c.Healthcheck.Retries != 3 || !slices.Equal(c.Healthcheck.Test, []string{"CMD", "true"}) {
		t.Fatalf("config %+v (health %+v)", c, c.Healthcheck)
	}
}

func TestRemoveNames(t *testing.T) {
	reg := newTestRegistry(t, nil)
	img := randomImage(t, 100, 1)
	reg.push(t, reg.ref("r:1"), img)
	reg.push(t, reg.ref("r:2"), img)
	s := openTestStore(t)
	pull(t, s, reg.ref("r:1"), PullOptions{})
	im := pull(t, s, reg.ref("r:2"), PullOptions{})
	if len(im.Names) != 2 {
		t.Fatalf("names %v", im.Names)
	}
	if removed, err := s.Remove(reg.ref("r:1")); err != nil || len(removed) != 0 {
		t.Fatalf("untag: %v %v", removed, err)
	}
	if _, err := s.Get(reg.ref("r:1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("untagged name still resolves: %v", err)
	}
	if removed, err := s.Remove(im.ShortID()); err != nil || len(removed) != 1 {
		t.Fatalf("remove by id: %v %v", removed, err)
	}
	if _, err := s.Remove(reg.ref("r:2")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove gone: %v", err)
	}
	// Tag adds names; a digest is not a name.
	if err := s.Tag(reg.ref("r:2"), "local/alias:v1"); err == nil {
		t.Fatal("tagging a removed image worked")
	}
	im = pull(t, s, reg.ref("r:2"), PullOptions{})
	if err := s.Tag(im.ID, "local/alias:v1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get("local/alias:v1"); err != nil || got.ID != im.ID || len(got.Names) != 2 {
		t.Fatalf("after Tag: %+v %v", got, err)
	}
	if err := s.Tag(im.ID, "local/alias@sha256:"+strings.Repeat("a", 64)); err == nil {
		t.Fatal("tagged with a digest")
	}
	// A tag moved to a new image leaves the old one without that name.
	other := randomImage(t, 100, 1)
	reg.push(t, reg.ref("r:1"), other)
	pull(t, s, reg.ref("r:2"), PullOptions{})
	moved := pull(t, s, reg.ref("r:1"), PullOptions{})
	old, _ := s.Get(reg.ref("r:2"))
	if slices.Contains(old.Names, reg.ref("r:1")) || !slices.Contains(moved.Names, reg.ref("r:1")) {
		t.Fatalf("tag did not move: old %v new %v", old.Names, moved.Names)
	}
	mustCheck(t, s)
}

// Lookups are served from the decoded index while index.json stays the
// same: a change by another handle (another berth process) shows at once,
// and what Get returns is the caller's to change.
func TestLookupsFollowTheIndex(t *testing.T) {
	reg := newTestRegistry(t, nil)
	reg.push(t, reg.ref("r:1"), randomImage(t, 100, 1))
	s := openTestStore(t)
	im := pull(t, s, reg.ref("r:1"), PullOptions{})
	got, err := s.Get(im.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Names[0] = "scribbled"
	other, err := Open(s.root)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Tag(im.ID, "local/x:1"); err != nil {
		t.Fatal(err)
	}
	again, err := s.Get("local/x:1")
	if err != nil {
		t.Fatalf("a tag made through another handle: %v", err)
	}
	if !slices.Contains(again.Names, reg.ref("r:1")) || slices.Contains(again.Names, "scribbled") {
		t.Fatalf("names %v", again.Names)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || len(list[0].Names) != 2 {
		t.Fatalf("list %v %v", list, err)
	}
}
