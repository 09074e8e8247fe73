package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// execOut runs sh -c script in service svc and returns its trimmed
// stdout; it fails the test unless the command exits 0.
func (s *stackEnv) execOut(svc, script string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("exec", "-T", svc, "sh", "-c", script).stdout)
}

// execFails runs sh -c script in svc and fails the test unless it exits
// non-zero with want in its output.
func (s *stackEnv) execFails(svc, script, want string) {
	s.t.Helper()
	r := s.berth("exec", "-T", svc, "sh", "-c", script)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, want) {
		s.t.Errorf("%q in %s: want a failure with %q, got %s", script, svc, want, r)
	}
}

// volumeNames returns the names `berth volume ls --format json` lists,
// with whether each is anonymous.
func (s *stackEnv) volumeNames() map[string]bool {
	s.t.Helper()
	r := s.must("volume", "ls", "--format", "json")
	out := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var v struct {
			Name      string
			Anonymous bool
			Labels    map[string]string
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			s.t.Fatalf("volume ls --format json line %q: %v", line, err)
		}
		out[v.Name] = v.Anonymous
	}
	return out
}

// projectVolumes lists the volume names of project among names: those
// named PROJECT_* (named volumes) and anonymous ones labelled with it.
func (s *stackEnv) projectVolumes() []string {
	s.t.Helper()
	r := s.must("volume", "ls", "--format", "json")
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var v struct {
			Name   string
			Labels map[string]string
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			s.t.Fatalf("volume ls --format json line %q: %v", line, err)
		}
		if strings.HasPrefix(v.Name, s.project+"_") || v.Labels["com.docker.compose.project"] == s.project {
			out = append(out, v.Name)
		}
	}
	return out
}

// examples/volumes as a user sees it: named volumes keep data across a
// recreate and down/up and go with down -v; the external volume stays;
// /etc is seeded from the image once; the anonymous volume survives a
// recreate and is renewed by up -V; read-only mounts, the tmpfs size and
// the secret hold.
func TestVolumesStack(t *testing.T) {
	requirePrivileged(t)
	shared := fmt.Sprintf("berth-e2e-shared%d-%d", os.Getpid(), rand.IntN(1e6))
	// The external volume, made before the stack so that it is removed
	// after the stack's down -v (cleanups run last-in first-out).
	v := &stackEnv{t: t, dir: filepath.Join(examples, "volumes")}
	v.must("volume", "create", shared)
	t.Cleanup(func() {
		if r := v.berth("volume", "rm", shared); r.code != 0 {
			t.Errorf("cleanup: %s", r)
		}
	})
	s := newStack(t, "volumes", "SHARED_VOLUME="+shared)
	data, etc := s.project+"_data", s.project+"_etc"

	s.must("up", "-d")
	s.execOut("app", "echo keep > /data/file && echo ext > /shared/ext && echo anon1 > /anon/a && sync")
	// /etc was seeded from the image; a change to it must stay (no second copy).
	if got := s.execOut("app", "cat /etc/passwd"); !strings.Contains(got, "root:x:0:0:root:/root:/bin/sh") {
		t.Errorf("/etc/passwd in the fresh etc volume: %q, want the image's", got)
	}
	s.execOut("app", "echo 'berth:x:1000:1000::/:/bin/sh' >> /etc/passwd")

	// Read-only mounts refuse writes; their content is readable.
	if got := s.execOut("app", "cat /robind/hello.txt"); got != "hello from the host" {
		t.Errorf("/robind/hello.txt = %q", got)
	}
	s.execFails("app", "touch /robind/x", "Read-only file system")
	if got := s.execOut("app", "cat /dataro/file"); got != "keep" {
		t.Errorf("/dataro/file (the data volume read-only) = %q, want keep", got)
	}
	s.execFails("app", "touch /dataro/x", "Read-only file system")

	// The tmpfs holds 1 MiB, no more.
	s.execOut("app", "dd if=/dev/zero of=/scratch/small bs=1024 count=512 2>&1")
	s.execFails("app", "rm -f /scratch/small; dd if=/dev/zero of=/scratch/big bs=1024 count=2048", "No space left")

	// The secret: readable, mode 0400, not writable even by root.
	if got := s.execOut("app", "cat /run/secrets/token"); got != "s3cret-token" {
		t.Errorf("/run/secrets/token = %q", got)
	}
	if got := s.execOut("app", "stat -c %a /run/secrets/token"); got != "400" {
		t.Errorf("mode of /run/secrets/token = %s, want 400", got)
	}
	s.execFails("app", "echo x > /run/secrets/token", "Read-only file system")

	// volume ls shows the project's named volumes, one anonymous one and
	// the external one.
	names := s.volumeNames()
	for _, n := range []string{data, etc, shared} {
		if _, ok := names[n]; !ok {
			t.Errorf("volume ls lacks %s: %v", n, names)
		}
	}
	if pv := s.projectVolumes(); len(pv) != 3 {
		t.Errorf("project volumes %v, want data, etc and one anonymous", pv)
	}

	// A recreate keeps the named and the anonymous volumes.
	before := s.ps()["app"]
	s.must("up", "-d", "--force-recreate")
	if after := s.ps()["app"]; after.ID == before.ID && after.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("up --force-recreate did not recreate app: %+v", after)
	}
	if got := s.execOut("app", "cat /data/file /anon/a; grep -c ^berth: /etc/passwd"); got != "keep\nanon1\n1" {
		t.Errorf("after a recreate: %q, want keep, anon1 and the /etc change once", got)
	}

	// up -V renews the anonymous volume only.
	s.must("up", "-d", "-V")
	if got := s.execOut("app", "cat /data/file; ls -A /anon | wc -l"); got != "keep\n0" {
		t.Errorf("after up -V: %q, want keep and an empty /anon", got)
	}

	// down + up keeps the named volumes.
	s.must("down", "-t", "1")
	if pv := s.projectVolumes(); len(pv) < 2 {
		t.Errorf("down removed named volumes: %v left", pv)
	}
	s.must("up", "-d")
	if got := s.execOut("app", "cat /data/file; grep -c ^berth: /etc/passwd"); got != "keep\n1" {
		t.Errorf("after down and up: %q, want keep and the /etc change", got)
	}

	// down -v removes the project's volumes, never the external one.
	s.must("down", "-v", "-t", "1")
	if pv := s.projectVolumes(); len(pv) != 0 {
		t.Errorf("after down -v, project volumes left: %v", pv)
	}
	if _, ok := s.volumeNames()[shared]; !ok {
		t.Errorf("down -v removed the external volume %s", shared)
	}
	s.must("up", "-d")
	if got := s.execOut("app", "ls -A /data | wc -l; grep -c ^berth: /etc/passwd; cat /shared/ext"); got != "0\n0\next" {
		t.Errorf("after down -v and up: %q, want an empty /data, the image's /etc and the external volume's file", got)
	}
}

// A bind mount whose target is /escape/berth-e2e-marker-dir, where /escape
// is a symlink to / in the image, lands inside the container's rootfs,
// never at the host's /berth-e2e-marker-dir.
func TestVolumeBindTargetSymlinkStaysInRootfs(t *testing.T) {
	requirePrivileged(t)
	const hostPath = "/berth-e2e-marker-dir"
	if _, err := os.Lstat(hostPath); err == nil {
		t.Fatalf("%s exists on the host already; remove it and rerun", hostPath)
	}
	t.Cleanup(func() {
		if _, err := os.Lstat(hostPath); err == nil {
			t.Errorf("the bind mount reached the host: %s exists", hostPath)
			_ = exec.Command("umount", "-l", hostPath).Run()
			os.Remove(hostPath)
		}
	})

	// The image: busybox with a few applets and /escape -> /.
	tmp := t.TempDir()
	rootfs := filepath.Join(tmp, "rootfs")
	for _, d := range []string{"bin", "tmp", "proc", "sys", "dev", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "cat", "ls", "test"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(tmp, "rootfs.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	ref := fmt.Sprintf("berth-escape-e2e%d:latest", os.Getpid())
	v := &stackEnv{t: t, dir: tmp}
	v.must("image", "import", "--change", "ENV PATH=/bin", tarball, ref)

	src := t.TempDir()
	token := fmt.Sprintf("marker%d", rand.IntN(1e9))
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte(token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, "volumes", "COMPOSE_FILE=escape.yaml", "ESCAPE_IMAGE="+ref, "MARKER_SOURCE="+src)
	s.project += "-esc"
	s.env = append(s.env, "COMPOSE_PROJECT_NAME="+s.project) // the last one wins

	s.must("up", "-d")
	if _, err := os.Lstat(hostPath); err == nil {
		t.Fatalf("the bind mount reached the host: %s exists", hostPath)
	}
	// Inside, the mount is at the rootfs's /berth-e2e-marker-dir (and so
	// through the symlink too).
	if got := s.execOut("escape", "cat /berth-e2e-marker-dir/marker /escape/berth-e2e-marker-dir/marker"); got != token+"\n"+token {
		t.Errorf("marker inside the container: %q, want %q twice", got, token)
	}
}
