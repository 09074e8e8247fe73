package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newBuildStack runs examples/build from a copy of it in a temporary
// directory (the tests edit its www/index.html), under project name
// build-e2e<pid><suffix>, publishing on a free port of 127.0.0.1. The
// tests give a random suffix: each run's image must be missing at first.
func newBuildStack(t *testing.T, suffix string) (s *stackEnv, port int) {
	t.Helper()
	// Made before newStack, so that it is still there for down in
	// newStack's cleanup (cleanups run last-in first-out).
	dir := filepath.Join(t.TempDir(), "build")
	port = freePort(t)
	s = newStack(t, "build", "WEB_PORT="+strconv.Itoa(port))
	if suffix != "" {
		s.project += suffix
		s.env = append(s.env, "COMPOSE_PROJECT_NAME="+s.project) // the last one wins
	}
	if err := os.CopyFS(dir, os.DirFS(s.dir)); err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	return s, port
}

func (s *stackEnv) writePage(content string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "www", "index.html"), []byte(content+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// get fetches / from 127.0.0.1:port; ok is false when it did not answer 200.
func get(port int) (body string, ok bool) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), resp.StatusCode == 200
}

func waitPage(t *testing.T, port int, want string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, ok := get(port)
		if ok && body == want {
			return
		}
		last = body
		if time.Now().After(deadline) {
			t.Fatalf("GET 127.0.0.1:%d/ = %q, want %q", port, last, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run builds a missing image; up -d --build builds the service's image
// from its Dockerfile (again) and runs it; after an edit of the copied file, up -d --build again rebuilds and
// recreates the container (its image changed), and the page changes. A
// plain up -d afterwards neither builds nor recreates.
func TestUpBuild(t *testing.T) {
	s, port := newBuildStack(t, fmt.Sprintf("b%d", rand.IntN(1e6)))
	name := s.project + "-web-1"
	v1 := fmt.Sprintf("build v1 %d", rand.IntN(1e6))
	s.writePage(v1)

	// run builds the missing image first, as up does.
	r := s.must("run", "--rm", "web", "cat", "/www/index.html")
	if strings.TrimSpace(r.stdout) != v1 || !strings.Contains(r.stderr, "Service web Built: ") {
		t.Errorf("run --rm on an unbuilt service: %s", r)
	}

	r = s.must("up", "-d", "--build")
	if !strings.Contains(r.stderr, "COPY www/ /www/") || !strings.Contains(r.stderr, "Service web Built: ") {
		t.Errorf("up -d --build shows no build:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "Container "+name+" Started") {
		t.Errorf("up -d --build did not start %s:\n%s", name, r.stderr)
	}
	waitPage(t, port, v1)
	first := s.ps()["web"]
	if !strings.Contains(first.Name, name) || first.State != "running" {
		t.Fatalf("ps after up: %+v", first)
	}

	v2 := fmt.Sprintf("build v2 %d", rand.IntN(1e6))
	s.writePage(v2)
	r = s.must("up", "-d", "--build")
	if !strings.Contains(r.stderr, "Service web Built: ") || !strings.Contains(r.stderr, "Container "+name+" Removed\n") {
		t.Errorf("second up -d --build did not rebuild and recreate:\n%s", r.stderr)
	}
	waitPage(t, port, v2)
	second := s.ps()["web"]
	if second.State != "running" || !second.CreatedAt.After(first.CreatedAt) {
		t.Errorf("the container was not recreated: before %+v, after %+v", first, second)
	}

	// Without --build, the stored image is used as it is.
	s.writePage("not built")
	r = s.must("up", "-d")
	if strings.Contains(r.stderr, "Built") || strings.Contains(r.stderr, "Removed") {
		t.Errorf("plain up -d rebuilt or recreated:\n%s", r.stderr)
	}
	waitPage(t, port, v2)
	// --no-build runs what is stored too.
	s.must("up", "-d", "--no-build")
	if c := s.ps()["web"]; !c.CreatedAt.Equal(second.CreatedAt) {
		t.Errorf("up -d --no-build recreated the container: %+v", c)
	}

	// run uses the built image too.
	if r := s.must("run", "--rm", "web", "cat", "/www/index.html"); strings.TrimSpace(r.stdout) != v2 || strings.Contains(r.stderr, "Built") {
		t.Errorf("run --rm web cat /www/index.html: %s", r)
	}

	s.must("down")
	if ps := s.ps(); len(ps) != 0 {
		t.Errorf("after down ps -a lists %+v", ps)
	}
	if _, ok := get(port); ok {
		t.Errorf("port %d still answers after down", port)
	}
}

// up --watch (attached): the stack comes up with its output attached, an
// edit of a synced file reaches the running container, and Ctrl-C stops
// the stack and the watch.
func TestUpWatch(t *testing.T) {
	s, port := newBuildStack(t, fmt.Sprintf("w%d", rand.IntN(1e6)))
	name := s.project + "-web-1"
	v1 := fmt.Sprintf("watch v1 %d", rand.IntN(1e6))
	s.writePage(v1)

	up := s.start("up", "--watch")
	out, errb, dump := &up.out, &up.errb, up.dump
	waitUntil(t, 2*time.Minute, "up --watch to build, start and watch", func() bool {
		return strings.Contains(out.String(), "Watching for changes")
	})
	s.remember()
	waitPage(t, port, v1)
	if !strings.Contains(errb.String(), "Service web Built: ") {
		t.Errorf("up --watch did not build the missing image:\n%s", dump())
	}

	v2 := fmt.Sprintf("watch v2 %d", rand.IntN(1e6))
	// The watcher may set itself up just after it says so: write again
	// until the change shows (each write is a change to sync).
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.writePage(v2)
		if body, ok := get(port); ok && body == v2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edit never reached the container\n%s", dump())
		}
		time.Sleep(500 * time.Millisecond)
		if body, ok := get(port); ok && body == v2 {
			break
		}
	}
	if !strings.Contains(out.String(), "web: synced 1 file to /www") {
		t.Errorf("up --watch did not report the sync\n%s", dump())
	}
	// httpd -v logs the requests: the output is attached meanwhile.
	waitUntil(t, 10*time.Second, "attached httpd output", func() bool {
		return strings.Contains(out.String(), "web-1  | ")
	})

	if code := up.interrupt(t); code != 130 {
		t.Errorf("up --watch after SIGINT exited %d, want 130\n%s", code, dump())
	}
	if strings.Contains(errb.String(), "berth: watch:") {
		t.Errorf("the watch failed:\n%s", dump())
	}
	if c := s.ps()["web"]; c.State != "exited" || c.Name != name {
		t.Errorf("after Ctrl-C: %+v", c)
	}
}
