package spec

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCommandResetKeepsEmptySlice(t *testing.T) {
	dir := writeStack(t, map[string]string{"compose.yaml": `services:
  cleared:
    image: busybox
    command: []
    entrypoint: []
  image-default:
    image: busybox
`})
	p, err := loadDir(t, dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Service("cleared")
	if c.Command == nil || len(c.Command) != 0 || c.Entrypoint == nil || len(c.Entrypoint) != 0 {
		t.Errorf("cleared: command %#v entrypoint %#v, want non-nil empty slices", c.Command, c.Entrypoint)
	}
	d, _ := p.Service("image-default")
	if d.Command != nil || d.Entrypoint != nil {
		t.Errorf("image-default: command %#v entrypoint %#v, want nil", d.Command, d.Entrypoint)
	}
}

func TestWarningsOncePerServiceAndField(t *testing.T) {
	dir := writeStack(t, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: busybox\n    gpus: all\n  api:\n    image: busybox\n    runtime: runc\n",
		"second.yaml":  "services:\n  web:\n    runtime: runc\n    cgroup_parent: x\n",
	})
	p, err := loadDir(t, dir, LoadOptions{Files: []string{"compose.yaml", "second.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`service "api": ignoring "runtime" (not supported)`,
		`service "web": ignoring "cgroup_parent" (not supported)`,
		`service "web": ignoring "gpus" (not supported)`,
		`service "web": ignoring "runtime" (not supported)`,
	}
	if strings.Join(p.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(p.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadFromStdin(t *testing.T) {
	dir := t.TempDir()
	p, err := Load(context.Background(), LoadOptions{
		Files: []string{"-"}, WorkingDir: dir, ProjectName: "in",
		Stdin: strings.NewReader("services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Services) != 1 || p.Services[0].Ports[0].Published != "8080" {
		t.Errorf("got %+v", p.Services)
	}
	_, err = Load(context.Background(), LoadOptions{
		Files: []string{"-"}, WorkingDir: dir, ProjectName: "in",
		Stdin: strings.NewReader("services:\n  web:\n    image: nginx\n    ports: [\"80:80:80\"]\n"),
	})
	if err == nil || err.Error() != `(stdin):4:13: services.web.ports[0]: invalid port "80:80:80"` {
		t.Errorf("error %v", err)
	}
}

func TestLoadErrorsOutsideTheFile(t *testing.T) {
	empty := t.TempDir()
	stack := writeStack(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n  dbg:\n    image: busybox\n    profiles: [debug]\n"})
	cases := []struct {
		name string
		dir  string
		o    LoadOptions
		want string
	}{
		{"no file found", empty, LoadOptions{}, "no stack file found in " + empty},
		{"missing -f", empty, LoadOptions{Files: []string{"nope.yaml"}}, "stack file nope.yaml: stat"},
		{"bad project name", stack, LoadOptions{ProjectName: "Bad Name"}, `invalid project name "Bad Name"`},
		{"bad project name env", stack, LoadOptions{Environ: []string{"COMPOSE_PROJECT_NAME=UPPER"}}, `invalid project name "UPPER"`},
		{"unknown service", stack, LoadOptions{Services: []string{"nope"}}, `no such service: "nope"`},
		{"missing env file", stack, LoadOptions{EnvFiles: []string{"missing.env"}}, "missing.env: env file:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := loadDir(t, c.dir, c.o)
			if err == nil || p != nil {
				t.Fatalf("Load succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
	// A named service enables its profile; others stay disabled.
	p, err := loadDir(t, stack, LoadOptions{Services: []string{"dbg"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Service("dbg"); !ok {
		t.Error("dbg not enabled by naming it")
	}
}

func TestEnvironIsHermetic(t *testing.T) {
	t.Setenv("BERTH_TEST_LEAK", "leaked")
	dir := writeStack(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: \"nginx:${BERTH_TEST_LEAK:-clean}\"\n"})
	p, err := loadDir(t, dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Services[0].Image != "nginx:clean" {
		t.Errorf("image %q: the process environment leaked into interpolation", p.Services[0].Image)
	}
}

func TestErrorIsInvalid(t *testing.T) {
	var e error = &Error{File: "f.yaml", Line: 1, Column: 2, Path: "services", Msg: "bad"}
	if !errors.Is(e, ErrInvalid) || e.Error() != "f.yaml:1:2: services: bad" {
		t.Errorf("got %q", e)
	}
}

func TestMergeErrorPointsAtLaterFile(t *testing.T) {
	dir := writeStack(t, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: busybox\n    gpus: all\n",
		"second.yaml":  "services:\n  web:\n    gpus: all\n",
	})
	_, err := loadDir(t, dir, LoadOptions{Files: []string{"compose.yaml", "second.yaml"}})
	want := "second.yaml:3:5: services.web.gpus: cannot be merged with the value in an earlier file (use !override or !reset)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

func TestErrorsNameTheRightFile(t *testing.T) {
	dir := writeStack(t, map[string]string{
		"compose.yaml":     "include: [sub/inc.yaml]\nservices:\n  web:\n    image: nginx\n",
		"sub/inc.yaml":     "services:\n  db:\n    image: postgres\n    mem_limit: 1zb\n",
		"ok.yaml":          "services:\n  web:\n    image: nginx\n",
		"override.yaml":    "services:\n  web:\n    networks: [missing]\n",
		"override2.yaml":   "services:\n  web:\n    healthcheck:\n      timeout: forever\n",
		"nested/deep.yaml": "services:\n  web:\n    image: nginx\n",
	})
	cases := []struct {
		files []string
		want  string
	}{
		{nil, "sub/inc.yaml:4:16: services.db.mem_limit: invalid byte size \"1zb\""},
		{[]string{"ok.yaml", "override.yaml"}, "override.yaml:3:16: services.web.networks[0]: undefined network \"missing\" (declare it under the top-level networks:)"},
		{[]string{"ok.yaml", "override2.yaml"}, "override2.yaml:4:16: services.web.healthcheck.timeout: invalid duration \"forever\""},
	}
	for _, c := range cases {
		_, err := loadDir(t, dir, LoadOptions{Files: c.files})
		if err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v\nwant %s", c.files, err, c.want)
		}
	}
}
