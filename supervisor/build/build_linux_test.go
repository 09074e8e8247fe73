package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

const multiStage = `# syntax=docker/dockerfile:1
ARG GREETING=hello
FROM busybox AS build
ARG GREETING
WORKDIR /src
COPY greet.sh ./
RUN chmod 755 greet.sh && echo "$GREETING from build" > message.txt && rm -f /etc/group
RUN mkdir -p /out && cp /bin/busybox /out/busybox && cp message.txt /out/

FROM scratch
COPY --from=build /out/ /
COPY --from=build /src/greet.sh /greet.sh
COPY --from=build /bin/sh /sh
ENTRYPOINT ["/busybox"]
CMD ["cat", "/message.txt"]
`

func TestMultiStageFromScratch(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": multiStage, "greet.sh": "#!/busybox sh\necho greet\n"})
	res, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"demo:1"}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, want := range []string{"[build 1/6] FROM busybox", "[build 5/6] RUN chmod 755", "[stage-1 2/6] COPY --from=build /out/ /", "naming to docker.io/library/demo:1", "DONE"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	if got := e.runImage(t, "demo:1"); got != "hello from build" {
		t.Errorf("output of the scratch image = %q, want %q", got, "hello from build")
	}
	if got := e.runImage(t, "demo:1", "/busybox", "ls", "/"); strings.Contains(got, "etc") || !strings.Contains(got, "greet.sh") {
		t.Errorf("scratch image holds more than it should: %q", got)
	}
	// A named symlink is copied as the file it points at.
	if got := e.runImage(t, "demo:1", "/busybox", "sh", "-c", "test -f /sh && test ! -L /sh && /sh -c 'echo via-sh'"); got != "via-sh" {
		t.Errorf("COPY of a symlink: %q", got)
	}
	if res.Image.Names[0] != "docker.io/library/demo:1" {
		t.Errorf("names = %v", res.Image.Names)
	}
	// The build stage's image is not tagged; its deletion of /etc/group
	// is a whiteout in its layer, checked by building only that stage.
	res2, out, err := e.build(t, Options{ContextDir: dir, Target: "build", Tags: []string{"demo:build"}})
	if err != nil {
		t.Fatalf("build target: %v\n%s", err, out)
	}
	if strings.Contains(out, "stage-1") {
		t.Errorf("target build ran the later stage:\n%s", out)
	}
	if got := e.runImage(t, "demo:build", "sh", "-c", "test -e /etc/group && echo present || echo gone; cat /src/message.txt; pwd"); got != "gone\nhello from build\n/src" {
		t.Errorf("build stage: %q", got)
	}
	if res2.Cached == 0 {
		t.Errorf("second build of the same stage used no cache:\n%s", out)
	}
}

func TestCacheHitsAndMisses(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nENV X=1\nRUN echo ran >> /runs\n",
		"a.txt":      "one\n",
	})
	res1, out1, err := e.build(t, Options{ContextDir: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out1)
	}
	if strings.Contains(out1, "CACHED") {
		t.Errorf("cold build has cached steps:\n%s", out1)
	}
	res2, out2, err := e.build(t, Options{ContextDir: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out2)
	}
	if n := strings.Count(out2, "CACHED"); n != 3 {
		t.Errorf("warm build: %d CACHED steps, want 3:\n%s", n, out2)
	}
	if res1.Image.ID != res2.Image.ID {
		t.Errorf("cached build gave image %s, first build %s", res2.Image.ID, res1.Image.ID)
	}
	// Changing a copied file invalidates the COPY and everything after.
	writeFiles(t, dir, map[string]string{"a.txt": "two\n"})
	res3, out3, err := e.build(t, Options{ContextDir: dir, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out3)
	}
	if strings.Contains(out3, "CACHED") {
		t.Errorf("build after a context change has cached steps:\n%s", out3)
	}
	if res3.Image.ID == res1.Image.ID {
		t.Error("image did not change after the context changed")
	}
	if got := e.runImage(t, "c:1", "cat", "/b.txt"); got != "two" {
		t.Errorf("b.txt = %q", got)
	}
	// --no-cache runs every step again.
	_, out4, err := e.build(t, Options{ContextDir: dir, NoCache: true, Tags: []string{"c:1"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out4)
	}
	if strings.Contains(out4, "CACHED") {
		t.Errorf("--no-cache build has cached steps:\n%s", out4)
	}
}

func TestDockerignore(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /app/\n",
		".dockerignore": "secret.txt\nlogs/\n!logs/keep.log\n",
		"secret.txt":    "password",
		"main.txt":      "main",
		"logs/a.log":    "a",
		"logs/keep.log": "keep",
	})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"ign:1"}}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := e.runImage(t, "ign:1", "sh", "-c", "cd /app && find . -type f | sort")
	if got != "./.dockerignore\n./Dockerfile\n./logs/keep.log\n./main.txt" {
		t.Errorf("files in /app:\n%s", got)
	}
	// An ignored file named explicitly is an error.
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY secret.txt /\n"})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"ign:2"}}); err == nil || !strings.Contains(err.Error(), "dockerignore") {
		t.Errorf("COPY of an ignored file: err = %v\n%s", err, out)
	}
}

func TestBuildArgs(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "ARG BASE=busybox\nFROM $BASE\nARG WHO=world\nARG TARGETARCH\nRUN echo \"hi $WHO\" > /who && echo $TARGETARCH > /arch\nLABEL who=$WHO\n",
	})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"args:1"}}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := e.runImage(t, "args:1", "cat", "/who"); got != "hi world" {
		t.Errorf("default arg: %q", got)
	}
	_, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"args:2"}, Args: map[string]string{"WHO": "berth", "UNUSED": "x"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out, "CACHED") {
		t.Errorf("a changed build arg hit the cache:\n%s", out)
	}
	if !strings.Contains(out, "build args not consumed: UNUSED") {
		t.Errorf("no warning for an unused build arg:\n%s", out)
	}
	if got := e.runImage(t, "args:2", "cat", "/who", "/arch"); !strings.HasPrefix(got, "hi berth\n") || strings.HasSuffix(got, "\n") {
		t.Errorf("build arg: %q", got)
	}
	img, _ := e.store.Get("args:2")
	cfg, _ := e.store.Config(img)
	if cfg.Labels["who"] != "berth" {
		t.Errorf("label = %q", cfg.Labels["who"])
	}
}

func TestFailingRunTagsNothing(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo first > /f\nRUN echo about to fail; echo on stderr >&2; exit 3\nRUN echo never\n",
	})
	_, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"fail:1"}})
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StepError\n%s", err, out)
	}
	if se.ExitCode != 3 || !strings.Contains(se.Step, "[3/4] RUN echo about to fail") {
		t.Errorf("step error: %+v", se)
	}
	msg := err.Error()
	for _, want := range []string{"exit code: 3", "about to fail", "on stderr"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(out, "never") {
		t.Errorf("steps after the failure ran:\n%s", out)
	}
	if _, err := e.store.Get("fail:1"); err == nil {
		t.Error("a failed build tagged its image")
	}
	// No build rootfs stays mounted.
	ents, _ := os.ReadDir(filepath.Join(e.root, "images", "containers"))
	if len(ents) != 0 {
		t.Errorf("leftover rootfs dirs: %d", len(ents))
	}
}

func TestAddArchiveChownChmodAndCacheMount(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM busybox
ADD files.tar /opt/
COPY --chown=app:app --chmod=600 conf/*.conf /etc/app/
RUN --mount=type=cache,target=/cache echo x >> /cache/n && wc -l < /cache/n > /count
USER app
RUN id -u > /tmp/uid
`,
		"conf/a.conf": "a", "conf/b.conf": "b", "conf/c.txt": "c",
	})
	tarDir := t.TempDir()
	writeFiles(t, tarDir, map[string]string{"x/inside.txt": "inside"})
	if out, err := execOut("tar", "-C", tarDir, "-cf", filepath.Join(dir, "files.tar"), "x"); err != nil {
		t.Fatal(err, out)
	}
	for i := range 2 {
		_, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"add:1"}, NoCache: true})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		got := e.runImage(t, "add:1", "sh", "-c", "cat /opt/x/inside.txt; echo; ls /etc/app; stat -c '%U %a' /etc/app/a.conf; cat /count /tmp/uid")
		want := "inside\na.conf\nb.conf\napp 600\n" + string(rune('1'+i)) + "\n1000"
		if got != want {
			t.Errorf("build %d:\n%s\nwant\n%s", i, got, want)
		}
	}
}

func TestAddURLNotSupported(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nADD https://example.invalid/x.tar /x\n"})
	_, _, err := e.build(t, Options{ContextDir: dir})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "URL") {
		t.Errorf("err = %v", err)
	}
}

var _ = regexp.MustCompile

func TestBuildServiceComposeFields(t *testing.T) {
	e := newTestEnv(t)
	proj := t.TempDir()
	writeFiles(t, proj, map[string]string{"extra/data.txt": "from a named context"})
	p := &spec.Project{Name: "shop", WorkingDir: proj}
	svc := &spec.Service{Name: "api", Build: &spec.Build{
		Context: ".",
		DockerfileInline: `FROM busybox AS one
RUN echo one > /one
FROM busybox AS two
RUN echo two > /two
FROM busybox AS final
COPY --from=one /one /r/
COPY --from=two /two /r/
COPY --from=extra data.txt /r/
COPY --from=busybox /etc/passwd /r/passwd
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /r/ifaces
EXPOSE 8080
HEALTHCHECK --interval=3s CMD true
STOPSIGNAL SIGINT
FROM busybox AS unused
RUN exit 1
`,
		Target:             "final",
		Labels:             map[string]string{"tier": "backend"},
		Tags:               []string{"shop/api:v2"},
		AdditionalContexts: map[string]string{"extra": filepath.Join(proj, "extra")},
		Network:            "none",
		ShmSize:            8 << 20,
	}}
	var out strings.Builder
	ref, err := e.b.BuildService(context.Background(), p, svc, ServiceOptions{Progress: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if ref != "docker.io/library/shop-api:latest" {
		t.Errorf("ref = %s", ref)
	}
	if strings.Contains(out.String(), "exit 1") {
		t.Errorf("the unused stage was built:\n%s", out.String())
	}
	got := e.runImage(t, "shop/api:v2", "sh", "-c", "cat /r/one /r/two /r/data.txt; echo; head -1 /r/passwd; cat /r/ifaces")
	if got != "one\ntwo\nfrom a named context\nroot:x:0:0:root:/root:/bin/sh\nlo" {
		t.Errorf("image content:\n%s", got)
	}
	img, err := e.store.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := e.store.Config(img)
	if cfg.Labels["tier"] != "backend" || cfg.StopSignal != "SIGINT" || len(cfg.ExposedPorts) != 1 || cfg.Healthcheck == nil || cfg.Healthcheck.Interval != 3*time.Second {
		t.Errorf("config: %+v", cfg)
	}
	if _, err := e.b.BuildService(context.Background(), p, &spec.Service{Name: "x"}, ServiceOptions{}); err == nil {
		t.Error("a service without build: was built")
	}
}

func TestEnsureServiceAndStaleCleanup(t *testing.T) {
	e := newTestEnv(t)
	proj := t.TempDir()
	p := &spec.Project{Name: "p", WorkingDir: proj}
	svc := &spec.Service{Name: "web", Image: "web:dev", Build: &spec.Build{Context: proj, DockerfileInline: "FROM busybox\nRUN echo hi > /hi\n"}}
	ctx := context.Background()
	ref, built, err := e.b.EnsureService(ctx, p, svc, ServiceOptions{}, false)
	if err != nil || !built || ref != "docker.io/library/web:dev" {
		t.Fatalf("first ensure: %s %v %v", ref, built, err)
	}
	if _, built, err := e.b.EnsureService(ctx, p, svc, ServiceOptions{}, false); err != nil || built {
		t.Errorf("second ensure rebuilt (%v) or failed: %v", built, err)
	}
	if _, built, err := e.b.EnsureService(ctx, p, svc, ServiceOptions{}, true); err != nil || !built {
		t.Errorf("forced ensure did not build (%v): %v", built, err)
	}
	svc.PullPolicy = "build"
	if _, built, err := e.b.EnsureService(ctx, p, svc, ServiceOptions{}, false); err != nil || !built {
		t.Errorf("pull_policy build did not build (%v): %v", built, err)
	}

	// A rootfs left by a build process that died is released by the next
	// Builder; one of a live process is kept.
	img, _ := e.store.Get("busybox")
	deadID := "build-fs-999999999-0123abcd"
	liveID := newID("fs")
	for _, id := range []string{deadID, liveID} {
		if _, cleanup, err := e.store.Prepare(id, img); err != nil {
			t.Fatal(err)
		} else {
			t.Cleanup(func() { cleanup() })
		}
	}
	if _, err := New(e.root, e.store, e.rt); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "images", "containers", deadID)); !os.IsNotExist(err) {
		t.Errorf("stale rootfs of a dead build kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "images", "containers", liveID)); err != nil {
		t.Errorf("rootfs of a live build removed: %v", err)
	}
}

func TestBuiltImageChecksSavesAndPrunes(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo saved > /s && rm /bin/vi\n"})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"saved:1"}}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if problems, err := e.store.Check(); err != nil || len(problems) != 0 {
		t.Fatalf("store check: %v %v", problems, err)
	}
	tarPath := filepath.Join(t.TempDir(), "saved.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Save(f, []string{"saved:1"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	other := newTestEnv(t)
	imgs, err := other.store.Load(context.Background(), tarPath, "", nil)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("load: %v %v", imgs, err)
	}
	if got := other.runImage(t, "saved:1", "sh", "-c", "cat /s; test -e /bin/vi || echo no-vi"); got != "saved\nno-vi" {
		t.Errorf("loaded image: %q", got)
	}
	// Prune keeps the tagged image's layers; the cache then still hits.
	if _, err := e.store.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"saved:1"}}); err != nil || !strings.Contains(out, "CACHED") {
		t.Errorf("rebuild after prune: %v\n%s", err, out)
	}
	// Once the image is removed and pruned, its layers are gone: the
	// cache entry no longer counts and the step runs again.
	if _, err := e.store.Remove("saved:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"saved:1"}}); err != nil || strings.Contains(out, "CACHED") {
		t.Errorf("rebuild after removing the layers: %v\n%s", err, out)
	}
}

func TestRunMountPointsStayOutOfLayers(t *testing.T) {
	if _, err := os.Stat("/etc/hosts"); err != nil {
		t.Fatalf("the test binds the host's /etc/hosts into RUN steps: %v", err)
	}
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY --from=busybox /bin /bin\nRUN [\"/bin/sh\", \"-c\", \"test -s /etc/hosts && test -d /proc/self && echo ok > /ok\"]\nRUN --mount=type=cache,target=/var/cache/x [\"/bin/sh\", \"-c\", \"touch /var/cache/x/f\"]\n"})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"mp:1"}}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	img, _ := e.store.Get("mp:1")
	rootfs, cleanup, err := e.store.Prepare(newID("test"), img)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	ents, _ := os.ReadDir(rootfs)
	var names []string
	for _, en := range ents {
		names = append(names, en.Name())
	}
	if strings.Join(names, " ") != "bin ok" {
		t.Errorf("image root holds %v, want only bin and ok", names)
	}
}

func TestCancelStopsRunningStep(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started && sleep 60\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := e.b.Build(ctx, Options{ContextDir: dir, Tags: []string{"cancel:1"}, Progress: &out})
		done <- err
	}()
	// The step's header names "started" too; the second one is the
	// command's own output, so the step is running.
	for strings.Count(out.String(), "started") < 2 {
		select {
		case err := <-done:
			t.Fatalf("build ended early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("build did not stop after cancel")
	}
	if _, err := e.store.Get("cancel:1"); err == nil {
		t.Error("a cancelled build tagged its image")
	}
	if states, _ := e.rt.List(); len(states) != 0 {
		t.Errorf("containers left: %v", states)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "images", "containers")); len(ents) != 0 {
		t.Errorf("rootfs dirs left: %d", len(ents))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunHeredocs(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN <<EOF\necho one > /one\necho two >> /one\nEOF\nRUN cat <<EOT > /two\nhello $((1+1))\nEOT\n"})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"hd:1"}}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := e.runImage(t, "hd:1", "cat", "/one", "/two"); got != "one\ntwo\nhello 2" {
		t.Errorf("heredoc output: %q", got)
	}
}

func TestRunBindMounts(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM busybox AS gen
RUN echo generated > /gen.txt
FROM busybox
RUN --mount=type=bind,target=/src --mount=type=bind,from=gen,source=/gen.txt,target=/in/gen.txt \
    ls -A /src | sort | tr '\n' ' ' > /listing && cat /in/gen.txt >> /listing && ! touch /src/x 2>/dev/null
`,
		".dockerignore": "hidden.txt\n",
		"shown.txt":     "s",
		"hidden.txt":    "h",
	})
	_, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"bind:1"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := e.runImage(t, "bind:1", "sh", "-c", "cat /listing; test -e /src || test -e /in || echo clean"); got != ".dockerignore Dockerfile shown.txt generated\nclean" {
		t.Errorf("bind mounts: %q", got)
	}
	if _, out, _ := e.build(t, Options{ContextDir: dir, Tags: []string{"bind:1"}}); strings.Count(out, "CACHED") != 2 {
		t.Errorf("unchanged binds missed the cache:\n%s", out)
	}
	writeFiles(t, dir, map[string]string{"shown.txt": "changed"})
	if _, out, _ := e.build(t, Options{ContextDir: dir, Tags: []string{"bind:1"}}); strings.Count(out, "CACHED") != 1 {
		t.Errorf("a changed bind source hit the cache:\n%s", out)
	}
}

func TestRenamesAndOpaqueDirs(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": `FROM busybox
RUN mkdir -p /data/sub /again && echo x > /data/sub/f && echo old > /again/old
RUN mv /data /moved && rm -rf /again && mkdir /again && echo new > /again/new
`})
	if _, out, err := e.build(t, Options{ContextDir: dir, Tags: []string{"mv:1"}}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := e.runImage(t, "mv:1", "sh", "-c", "cat /moved/sub/f; test -e /data || echo no-data; ls /again")
	if got != "x\nno-data\nnew" {
		t.Errorf("after rename and re-created dir: %q", got)
	}
}
