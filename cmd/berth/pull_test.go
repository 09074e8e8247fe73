package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPullServices pulls a stack's images from a registry served on
// loopback: both services' images arrive, a shared image is fetched once,
// --policy missing fetches nothing that is already there, and a missing
// image fails naming its service.
func TestPullServices(t *testing.T) {
	var manifestGets atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			manifestGets.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, repo := range []string{"app", "db"} {
		img, err := random.Image(256, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host + "/test/" + repo + ":1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	manifestGets.Store(0)

	dir := writeFiles(t, map[string]string{"compose.yaml": `
services:
  web:
    image: ` + host + `/test/app:1
  worker:
    image: ` + host + `/test/app:1
  db:
    image: ` + host + `/test/db:1
  local:
    image: never-pulled:1
    pull_policy: build
    build: .
`})
	root := t.TempDir()
	if out, stderr, err := runBerth(t, "", "--root", root, "pull", "-q", "--project-directory", dir); err != nil {
		t.Fatalf("pull: %v\n%s%s", err, out, stderr)
	}
	if n := manifestGets.Load(); n != 2 {
		t.Errorf("%d manifest fetches, want 2 (the shared image once)", n)
	}
	out, _, err := runBerth(t, "", "--root", root, "image", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/test/app", "/test/db"} {
		if !strings.Contains(out, want) {
			t.Errorf("image ls lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "never-pulled") {
		t.Errorf("a pull_policy: build service was pulled:\n%s", out)
	}

	manifestGets.Store(0)
	if _, stderr, err := runBerth(t, "", "--root", root, "pull", "-q", "--policy", "missing", "--project-directory", dir); err != nil {
		t.Fatalf("pull --policy missing: %v\n%s", err, stderr)
	}
	if n := manifestGets.Load(); n != 0 {
		t.Errorf("--policy missing fetched %d manifests of images already stored", n)
	}

	bad := writeFiles(t, map[string]string{"compose.yaml": "services:\n  api:\n    image: " + host + "/test/nope:1\n"})
	_, _, err = runBerth(t, "", "--root", root, "pull", "-q", "--project-directory", bad)
	if err == nil || !strings.Contains(err.Error(), `service "api"`) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("pull of a missing image: %v", err)
	}
	if _, _, err := runBerth(t, "", "--root", root, "pull", "-q", "--ignore-pull-failures", "--project-directory", bad); err != nil {
		t.Fatalf("--ignore-pull-failures still failed: %v", err)
	}
	if _, _, err := runBerth(t, "", "--root", root, "pull", "--policy", "sometimes", "--project-directory", dir); err == nil || !strings.Contains(err.Error(), `"sometimes"`) {
		t.Fatalf("bad --policy: %v", err)
	}
}
