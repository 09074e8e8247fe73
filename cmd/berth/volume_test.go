package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/volumes"
)

// runVolumeCLI runs berth in-process with --root root and stdin.
func runVolumeCLI(t *testing.T, root, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return runBerth(t, stdin, append([]string{"--root", root}, args...)...)
}

func TestVolumeCLI(t *testing.T) {
	root := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, _, err := runVolumeCLI(t, root, stdin, args...)
		return out, err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run("", args...)
		if err != nil {
			t.Fatalf("berth %v: %v", args, err)
		}
		return out
	}

	if out := mustRun("volume", "create", "shared", "--label", "team=web", "--driver-opt", "type=tmpfs", "-o", "o=size=1m"); out != "shared\n" {
		t.Fatalf("create printed %q", out)
	}
	mustRun("volume", "create", "shared", "--label", "team=web", "--driver-opt", "type=tmpfs", "-o", "o=size=1m") // same again: fine
	if _, err := run("", "volume", "create", "shared", "--label", "team=db"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create with other labels: %v", err)
	}
	for _, bad := range [][]string{
		{"volume", "create", "bad/name"},
		{"volume", "create", "x", "--label", "novalue"},
		{"volume", "create", "x", "-o", "colour=red"},
		{"volume", "create", "x", "--driver", "nfs"},
		{"volume", "ls", "--format", "xml"},
		{"volume", "create"},
	} {
		if _, err := run("", bad...); err == nil {
			t.Errorf("berth %v: no error", bad)
		}
	}
	mustRun("volume", "create", "plain")

	// A project uses "plain" (external) and gets an anonymous volume.
	m, err := volumes.NewForRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	p := &spec.Project{Name: "app", WorkingDir: root, Volumes: []spec.Volume{{Name: "plain", ActualName: "plain", External: true}}}
	svc := &spec.Service{Name: "web", Mounts: []spec.Mount{
		{Type: spec.MountVolume, Source: "plain", Target: "/plain"},
		{Type: spec.MountVolume, Target: "/anon"},
	}}
	if _, _, err := m.Prepare(context.Background(), p, svc, "app-web-1", ""); err != nil {
		t.Fatal(err)
	}
	anon := volumes.AnonymousName("app", "app-web-1", "/anon")

	out := mustRun("volume", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "DRIVER") || !strings.Contains(lines[2], "plain") || !strings.Contains(lines[2], "app-web-1") {
		t.Fatalf("ls:\n%s", out)
	}
	if out := mustRun("volume", "ls", "-q"); out != anon+"\nplain\nshared\n" {
		t.Fatalf("ls -q: %q", out)
	}
	out = mustRun("volume", "ls", "--format", "json")
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v volumes.Volume
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("ls --format json line %q: %v", l, err)
		}
		names = append(names, v.Name)
		if v.Name == "shared" && (v.Labels["team"] != "web" || v.Options["type"] != "tmpfs" || v.Driver != "local") {
			t.Errorf("json %+v", v)
		}
	}
	if strings.Join(names, ",") != anon+",plain,shared" {
		t.Fatalf("json names %v", names)
	}

	for _, tc := range []struct {
		filter []string
		want   string
	}{
		{[]string{"--filter", "label=team=web"}, "shared\n"},
		{[]string{"--filter", "label=team"}, "shared\n"},
		{[]string{"--filter", "label=team=db"}, ""},
		{[]string{"--filter", "name=lai"}, "plain\n"},
		{[]string{"--filter", "dangling=true"}, "shared\n"},
		{[]string{"--filter", "dangling=false", "-f", "name=anon"}, anon + "\n"},
	} {
		if out := mustRun(append([]string{"volume", "ls", "-q"}, tc.filter...)...); out != tc.want {
			t.Errorf("ls -q %v = %q, want %q", tc.filter, out, tc.want)
		}
	}
	for _, bad := range []string{"colour=red", "dangling=maybe", "novalue"} {
		if _, err := run("", "volume", "ls", "--filter", bad); err == nil {
			t.Errorf("ls --filter %s: no error", bad)
		}
	}

	out, err = run("", "volume", "inspect", "shared", "missing")
	var got []volumes.Volume
	if jerr := json.Unmarshal([]byte(out), &got); jerr != nil || len(got) != 1 || got[0].Name != "shared" || got[0].Mountpoint == "" {
		t.Fatalf("inspect output %q: %v", out, jerr)
	}
	if err == nil || !strings.Contains(err.Error(), "no such volume: missing") {
		t.Fatalf("inspect missing: %v", err)
	}

	if _, err := run("", "volume", "rm", "plain"); err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "app-web-1") {
		t.Fatalf("rm in use: %v", err)
	}
	if err := m.Release("app-web-1"); err != nil {
		t.Fatal(err)
	}

	// prune asks first; "n" keeps everything.
	if _, err := run("n\n", "volume", "prune"); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("prune answered n: %v", err)
	}
	if out := mustRun("volume", "ls", "-q"); strings.Count(out, "\n") != 3 {
		t.Fatalf("prune cancelled but removed: %q", out)
	}
	if out, err := run("y\n", "volume", "prune"); err != nil || out != "Deleted Volumes:\n"+anon+"\n" {
		t.Fatalf("prune: %q, %v", out, err)
	}
	if out := mustRun("volume", "prune", "-f", "-a", "--filter-label", "team=web"); out != "Deleted Volumes:\nshared\n" {
		t.Fatalf("prune -a with label: %q", out)
	}
	if out := mustRun("volume", "rm", "plain"); out != "plain\n" {
		t.Fatalf("rm: %q", out)
	}
	if out := mustRun("volume", "ls", "-q"); out != "" {
		t.Fatalf("left: %q", out)
	}
	if _, err := run("", "volume", "rm", "plain"); err == nil || !strings.Contains(err.Error(), "no such volume") {
		t.Fatalf("rm missing: %v", err)
	}
}
