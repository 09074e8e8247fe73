package build

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/supervisor/image"
	"github.com/berth-dev/berth/supervisor/image/imagetest"
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
	imagetest.ImportBusybox(t, st, nil, "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
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
