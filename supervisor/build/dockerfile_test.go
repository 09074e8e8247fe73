package build

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berth-dev/berth/supervisor/image"
	berthrt "github.com/berth-dev/berth/supervisor/runtime"
)

func mustParse(t *testing.T, src string) *dockerfile {
	t.Helper()
	df, err := parseDockerfile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return df
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		"",
		"RUN echo no from\n",
		"FROM busybox\nFROBNICATE x\n",
		"FROM busybox\nCOPY\n",
	} {
		if _, err := parseDockerfile([]byte(src)); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func TestPlanTargetsAndDeps(t *testing.T) {
	src := `ARG BASE=busybox
ARG V
FROM ${BASE}:1 AS deps
FROM deps AS build
RUN --mount=type=cache,target=/c,from=tools true
COPY --from=0 /a /a
FROM alpine AS tools
FROM scratch AS unrelated
FROM --platform=$BUILDPLATFORM scratch
COPY --from=build /a /a
ONBUILD RUN echo later
HEALTHCHECK --interval=5s CMD true
`
	df := mustParse(t, src)
	meta, err := metaScope(df, map[string]string{"BASE": "example/base"})
	if err != nil {
		t.Fatal(err)
	}
	stages, tgt, err := plan(df, meta, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range stages {
		names = append(names, s.name)
	}
	// "tools" comes after "build", so from=tools does not name it (as in
	// BuildKit, stages are only referable once defined): it is an image.
	if got := strings.Join(names, ","); got != "deps,build,stage-4" {
		t.Errorf("stages for the default target: %s", got)
	}
	if tgt != 4 {
		t.Errorf("target = %d", tgt)
	}
	if stages[0].base != "example/base:1" || stages[1].baseIdx != 0 {
		t.Errorf("deps base %q, build baseIdx %d", stages[0].base, stages[1].baseIdx)
	}
	if stages[2].platform != "linux/"+runtime.GOARCH {
		t.Errorf("BUILDPLATFORM expanded to %q", stages[2].platform)
	}
	stages, tgt, err = plan(df, meta, "TOOLS")
	if err != nil || len(stages) != 1 || stages[0].name != "tools" || tgt != 2 {
		t.Errorf("target tools: %v %d %v", stages, tgt, err)
	}
	if _, _, err := plan(df, meta, "nope"); err == nil {
		t.Error("unknown target accepted")
	}
}

func TestMetaArgs(t *testing.T) {
	df := mustParse(t, "ARG A=one\nARG B=${A}-two\nARG C\nFROM scratch\n")
	env, err := metaScope(df, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := env.Get("B"); v != "one-two" {
		t.Errorf("B = %q", v)
	}
	if _, ok := env.Get("C"); ok {
		t.Error("C has a value without one")
	}
	env, _ = metaScope(df, map[string]string{"A": "x", "C": "c"})
	if v, _ := env.Get("B"); v != "x-two" {
		t.Errorf("B with A=x: %q", v)
	}
	if v, _ := env.Get("C"); v != "c" {
		t.Errorf("C = %q", v)
	}
	if v, _ := env.Get("TARGETOS"); v != "linux" {
		t.Errorf("TARGETOS = %q", v)
	}
}

func TestArgValuePrecedence(t *testing.T) {
	df := mustParse(t, "ARG G=global\nFROM scratch\nARG G\nARG D=dflt\nARG NONE\n")
	meta, _ := metaScope(df, nil)
	r := &buildRun{df: df, meta: meta, opts: Options{Args: map[string]string{"D": "given"}}, usedArgs: map[string]bool{}}
	st := &stageState{args: newEnvMap()}
	args := df.stages[0].Commands
	get := func(i int) (string, bool) {
		return r.argValue(st, args[i].(*instructions.ArgCommand).Args[0])
	}
	if v, ok := get(0); !ok || v != "global" {
		t.Errorf("ARG G = %q %v, want the global value", v, ok)
	}
	if v, ok := get(1); !ok || v != "given" {
		t.Errorf("ARG D = %q %v, want the build arg", v, ok)
	}
	if _, ok := get(2); ok {
		t.Error("ARG NONE has a value")
	}
	if !r.isUsed("D") || r.isUsed("OTHER") || !r.isUsed("HTTP_PROXY") || !r.isUsed("G") {
		t.Error("isUsed is wrong")
	}
}

func TestExpandPorts(t *testing.T) {
	exp := expander('\\', newEnvMap())
	got, err := expandPorts([]string{"80", "53/UDP", "8000-8002/tcp"}, exp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "80/tcp 53/udp 8000/tcp 8001/tcp 8002/tcp" {
		t.Errorf("ports: %v", got)
	}
	for _, bad := range []string{"x", "9-1", "70000"} {
		if _, err := expandPorts([]string{bad}, exp); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCmdlineShellForms(t *testing.T) {
	df := mustParse(t, "FROM scratch\nSHELL [\"/bin/bash\", \"-ec\"]\nRUN echo $HOME && true\nRUN [\"echo\", \"exec form\"]\n")
	st := &stageState{shell: []string{"/bin/bash", "-ec"}}
	run1 := df.stages[0].Commands[1].(*instructions.RunCommand)
	run2 := df.stages[0].Commands[2].(*instructions.RunCommand)
	if got := st.cmdline(run1.ShellDependantCmdLine); strings.Join(got, "|") != "/bin/bash|-ec|echo $HOME && true" {
		t.Errorf("shell form: %q", got)
	}
	if got := st.cmdline(run2.ShellDependantCmdLine); strings.Join(got, "|") != "echo|exec form" {
		t.Errorf("exec form: %q", got)
	}
}

func TestCacheKeys(t *testing.T) {
	if keyOf("a", "bc") == keyOf("ab", "c") {
		t.Error("key parts are not delimited")
	}
	if keyOf("x", "y") != keyOf("x", "y") {
		t.Error("keys are not deterministic")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/one.txt": "1", "a/two.txt": "2", "skip.log": "s"})
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("*.log\n"), 0o644)
	src, err := newContextSource(dir, filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	hash := func(pat string) string {
		t.Helper()
		m, err := src.match(pat)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if err := src.hashSources(h, m); err != nil {
			t.Fatal(err)
		}
		return string(h.Sum(nil))
	}
	h1 := hash("a")
	if hash("a") != h1 {
		t.Error("hash not stable")
	}
	all := hash(".")
	os.WriteFile(filepath.Join(dir, "skip.log"), []byte("changed"), 0o644)
	if hash(".") != all {
		t.Error("an ignored file changed the hash")
	}
	os.WriteFile(filepath.Join(dir, "a/two.txt"), []byte("22"), 0o644)
	if hash("a") == h1 {
		t.Error("content change kept the hash")
	}
	h2 := hash("a")
	os.Chmod(filepath.Join(dir, "a/two.txt"), 0o755)
	if hash("a") == h2 {
		t.Error("mode change kept the hash")
	}
	if m, _ := src.match("a/*.txt"); len(m) != 2 {
		t.Errorf("glob: %v", m)
	}
	if _, err := src.match("*.log"); err == nil {
		t.Error("a glob matching only ignored files succeeded")
	}
	if _, err := src.match("../../etc/passwd"); err == nil {
		t.Error("a path outside the context was found")
	}
}

func TestSecureJoin(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "real/dir"), 0o755)
	os.Symlink("/real", filepath.Join(root, "abs"))
	os.Symlink("../../../../..", filepath.Join(root, "real/up"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	for in, want := range map[string]string{
		"/abs/dir":         "/real/dir",
		"/real/up/etc":     "/etc",
		"../../etc/passwd": "/etc/passwd",
		"/abs/new/file":    "/real/new/file",
	} {
		got, err := berthrt.ResolveInRoot(root, in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got != filepath.Join(root, want) {
			t.Errorf("%s -> %s, want %s", in, got, filepath.Join(root, want))
		}
	}
	if _, err := berthrt.ResolveInRoot(root, "/loop/x"); err == nil {
		t.Error("symlink loop resolved")
	}
}

func TestStepErrorMessage(t *testing.T) {
	err := error(&StepError{Step: "[2/3] RUN make", ExitCode: 2, Tail: []string{"cc: error"}})
	msg := err.Error()
	if !strings.Contains(msg, "[2/3] RUN make") || !strings.Contains(msg, "exit code: 2") || !strings.Contains(msg, "cc: error") {
		t.Errorf("message: %s", msg)
	}
	wrapped := &StepError{Step: "x", Err: ErrNotSupported}
	if !errors.Is(wrapped, ErrNotSupported) {
		t.Error("StepError does not unwrap")
	}
}

func TestBuildInputErrors(t *testing.T) {
	root := t.TempDir()
	st, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(root, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := b.Build(ctx, Options{ContextDir: "https://github.com/x/y.git"}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("remote context: %v", err)
	}
	if _, err := b.Build(ctx, Options{ContextDir: dir}); err == nil || !strings.Contains(err.Error(), "Dockerfile") {
		t.Errorf("missing Dockerfile: %v", err)
	}
	if _, err := b.Build(ctx, Options{ContextDir: filepath.Join(dir, "nope"), DockerfileInline: "FROM scratch\n"}); err == nil {
		t.Error("missing context accepted")
	}
	if _, err := b.Build(ctx, Options{ContextDir: dir, DockerfileInline: "FROM scratch\n", Target: "x"}); err == nil || !strings.Contains(err.Error(), "target stage") {
		t.Errorf("unknown target: %v", err)
	}
	if _, err := b.Build(ctx, Options{ContextDir: dir, DockerfileInline: "FROM scratch\nEXPOSE abc\n"}); err == nil || !strings.Contains(err.Error(), "EXPOSE") {
		t.Errorf("bad EXPOSE: %v", err)
	}
	if _, err := b.Build(ctx, Options{ContextDir: dir, DockerfileInline: "FROM scratch\nCOPY --chmod=u+x a /a\n"}); err == nil || !strings.Contains(err.Error(), "octal") {
		t.Errorf("symbolic chmod: %v", err)
	}
	if _, err := b.Build(ctx, Options{ContextDir: dir, DockerfileInline: "FROM scratch\nRUN --mount=type=secret,id=x true\n"}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("secret mount: %v", err)
	}
}

func TestRunArgsHeredocs(t *testing.T) {
	df := mustParse(t, "FROM scratch\nRUN <<EOF\necho a\nEOF\nRUN cat <<X > /f\nbody\nX\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n")
	st := &stageState{shell: []string{"/bin/sh", "-c"}}
	cmds := df.stages[0].Commands
	a, err := st.runArgs(cmds[0].(*instructions.RunCommand))
	if err != nil || strings.Join(a, "|") != "/bin/sh|-c|echo a\n" {
		t.Errorf("simple heredoc: %q %v", a, err)
	}
	a, err = st.runArgs(cmds[1].(*instructions.RunCommand))
	if err != nil || strings.Join(a, "|") != "/bin/sh|-c|cat <<X > /f\nbody\nX" {
		t.Errorf("shell heredoc: %q %v", a, err)
	}
	if _, err := st.runArgs(cmds[2].(*instructions.RunCommand)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("shebang heredoc: %v", err)
	}
}
