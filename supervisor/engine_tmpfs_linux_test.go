package supervisor

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// A service with tmpfs: entries gets each one mounted once, with the
// entry's options over Docker's defaults. (The engine used to hand the
// entries to specconv twice, once as volumes' mounts and once as
// svc.Tmpfs, and every such service failed with "two mounts".)
func TestEngineTmpfs(t *testing.T) {
	env := newTestEnv(t)
	p := env.projectOf(spec.Service{Name: "scratch", Command: []string{"sleep", "1000"},
		Tmpfs: []string{"/scratch:exec,size=1m", "/cache"}})
	i := env.create(p, "scratch")
	env.start(i)
	t.Cleanup(func() { i.Remove(context.Background(), RemoveOptions{Force: true}) })

	code, out := execOut(t, i, "cat", "/proc/self/mounts")
	if code != 0 {
		t.Fatalf("cat /proc/self/mounts: exit %d: %s", code, out)
	}
	found := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && (f[1] == "/scratch" || f[1] == "/cache") {
			if f[2] != "tmpfs" {
				t.Errorf("%s is %s, want tmpfs", f[1], f[2])
			}
			found[f[1]] = append(found[f[1]], f[3])
		}
	}
	for _, d := range []string{"/scratch", "/cache"} {
		if len(found[d]) != 1 {
			t.Fatalf("%d mounts at %s, want 1:\n%s", len(found[d]), d, out)
		}
	}
	scratch := strings.Split(found["/scratch"][0], ",")
	cache := strings.Split(found["/cache"][0], ",")
	for _, o := range []string{"nosuid", "nodev", "size=1024k"} {
		if !slices.Contains(scratch, o) {
			t.Errorf("/scratch options %v lack %s", scratch, o)
		}
	}
	if slices.Contains(scratch, "noexec") {
		t.Errorf("/scratch options %v: exec did not replace noexec", scratch)
	}
	for _, o := range []string{"nosuid", "nodev", "noexec"} {
		if !slices.Contains(cache, o) {
			t.Errorf("/cache options %v lack %s", cache, o)
		}
	}
}
