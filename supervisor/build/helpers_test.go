package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/runtime"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}

// busyboxTar writes a rootfs tarball made from /bin/busybox, as
// examples/images/make-busybox.sh does.
func busyboxTar(t testing.TB, dir string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no /bin/busybox (install busybox-static): %v", err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "busybox.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for _, d := range []string{"bin/", "etc/", "tmp/", "root/", "proc/", "sys/", "dev/", "var/", "home/", "usr/", "usr/bin/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, bb)
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, []byte("root:x:0:\napp:x:1000:\nnobody:x:65534:\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// testEnv is a builder over a temp berth root holding busybox:latest.
type testEnv struct {
	root  string
	store *image.Store
	rt    *runtime.Runtime
	b     *Builder
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	requirePrivileged(t)
	root := t.TempDir()
	st, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Import(context.Background(), busyboxTar(t, t.TempDir()), "busybox:latest", image.ImportOptions{
		Changes: []string{`CMD ["sh"]`, "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(filepath.Join(root, "runtime"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(root, st, rt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Release any rootfs a failed step left mounted.
		ents, _ := os.ReadDir(filepath.Join(root, "images", "containers"))
		for _, e := range ents {
			st.Release(e.Name())
		}
	})
	return &testEnv{root: root, store: st, rt: rt, b: b}
}

// writeFiles writes a build context.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// build runs a build and returns the result and its progress output.
func (e *testEnv) build(t testing.TB, opts Options) (*Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	opts.Progress = &out
	res, err := e.b.Build(context.Background(), opts)
	return res, out.String(), err
}

// runImage runs args in a container of img and returns its output.
func (e *testEnv) runImage(t testing.TB, ref string, args ...string) string {
	t.Helper()
	img, err := e.store.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := e.store.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(args) == 0 {
		args = append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	}
	id := newID("test")
	rootfs, cleanup, err := e.store.Prepare(id, img)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	var buf bytes.Buffer
	lw := &lineWriter{v: newProgress(&buf).vertex("run"), max: 100}
	code, err := e.b.runContainer(context.Background(), rootfs, runSpec{args: args, env: cfg.Env, cwd: orRoot(cfg.WorkingDir), user: cfg.User, network: "none", out: lw}, e.b.cache)
	lw.flush()
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, strings.Join(lw.tail, "\n"))
	}
	return strings.Join(lw.tail, "\n")
}

func orRoot(s string) string {
	if s == "" {
		return "/"
	}
	return s
}

var _ = io.Discard

func execOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
