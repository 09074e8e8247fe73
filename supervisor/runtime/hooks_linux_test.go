package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHooks(t *testing.T) {
	requirePrivileged(t)
	checkNoLeaks(t)
	bundle := makeRootfs(t)
	dir := t.TempDir()
	hook := func(script string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin:/usr/bin"}}
	}
	spec := DefaultSpec("rootfs", "/bin/sh", "-c", "cat /tmp/sc")
	spec.Hostname = "hooked"
	spec.Hooks = &specs.Hooks{
		CreateRuntime:   []specs.Hook{hook("cat > " + dir + "/createRuntime.json; hostname > " + dir + "/createRuntime.host")},
		CreateContainer: []specs.Hook{hook("hostname > " + dir + "/createContainer.host")},
		StartContainer:  []specs.Hook{hook("echo started-in-container > /tmp/sc")},
		Poststart:       []specs.Hook{hook("cat > " + dir + "/poststart.json")},
		Poststop:        []specs.Hook{hook("cat > " + dir + "/poststop.json")},
	}
	res := runContainer(t, newTestRuntime(t), bundle, spec)
	if res.exit.Code != 0 || strings.TrimSpace(res.out) != "started-in-container" {
		t.Fatalf("%+v", res)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("hook did not run: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	var st specs.State
	if err := json.Unmarshal([]byte(read("createRuntime.json")), &st); err != nil || st.Status != specs.StateCreating || st.Pid <= 0 {
		t.Errorf("createRuntime state %+v %v", st, err)
	}
	host, _ := os.Hostname()
	if read("createRuntime.host") != host || read("createContainer.host") != "hooked" {
		t.Errorf("hooks ran in the wrong namespaces: createRuntime %q createContainer %q", read("createRuntime.host"), read("createContainer.host"))
	}
	json.Unmarshal([]byte(read("poststart.json")), &st)
	if st.Status != specs.StateRunning {
		t.Errorf("poststart state %+v", st)
	}
	json.Unmarshal([]byte(read("poststop.json")), &st)
	if st.Status != specs.StateStopped {
		t.Errorf("poststop state %+v", st)
	}

	// a failing createRuntime hook fails the create, leaving nothing
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{hook("echo nope >&2; exit 1")}}
	r := newTestRuntime(t)
	if _, err := r.Create(context.Background(), testID(t), CreateOpts{Bundle: bundle, Spec: spec}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("failing hook: %v", err)
	}
	if ents, _ := os.ReadDir(r.Root()); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
}
