package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	m := parseMountOptions([]string{"rbind", "ro", "nosuid", "rprivate", "mode=755", "size=1k", "rw", "ro"})
	if !m.bind || !m.readonly || m.flags&unix.MS_REC == 0 || m.flags&unix.MS_NOSUID == 0 {
		t.Fatalf("%+v", m)
	}
	if len(m.propagation) != 1 || m.propagation[0] != unix.MS_PRIVATE|unix.MS_REC || m.dataString() != "mode=755,size=1k" {
		t.Fatalf("%+v", m)
	}
	if m := parseMountOptions([]string{"ro", "rw"}); m.readonly {
		t.Fatal("rw after ro must clear it")
	}
}

// resolveInRoot never leaves the root, whatever the symlinks say.
func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.Symlink("/etc", filepath.Join(root, "abs"))
	os.Symlink("../../../../..", filepath.Join(root, "a/up"))
	os.Symlink("b", filepath.Join(root, "a/rel"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for in, want := range map[string]string{
		"/abs/passwd":      "/etc/passwd",
		"/a/up/etc/shadow": "/etc/shadow",
		"../../x":          "/x",
		"/a/rel/c/d":       "/a/b/c/d",
		"/a/b":             "/a/b",
	} {
		got, err := resolveInRoot(fd, in, false)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := resolveInRoot(fd, "/loop/x", false); err == nil {
		t.Error("symlink loop resolved")
	}
	if _, err := resolveInRoot(fd, "/abs", true); err == nil {
		t.Error("symlink accepted with noSymlinks")
	}
	// mkdirAllInRoot creates below the root, not on the host.
	nfd, err := mkdirAllInRoot(fd, "/abs/berth-made-this", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(nfd)
	if _, err := os.Stat(filepath.Join(root, "etc/berth-made-this")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/berth-made-this"); err == nil {
		t.Fatal("created on the host")
	}
}

// TestStateFileEncoding: the state file carries the config given encoded
// exactly once, as "config", and Load's decoding gets both back.
func TestStateFileEncoding(t *testing.T) {
	code := 3
	st := State{
		State:         specs.State{Version: specs.Version, ID: "c1", Status: specs.StateStopped, Pid: 42, Bundle: "/b", Annotations: map[string]string{"k": "v"}},
		InitStartTime: 99, ExitCode: &code, CgroupPaths: map[string]string{"pids": "/x"}, Rootfs: "/b/rootfs",
		Config: &specs.Spec{Hostname: "ignored"}, // the encoded config wins
	}
	config, err := json.Marshal(&specs.Spec{Version: specs.Version, Hostname: "box", Process: &specs.Process{Args: []string{"sh"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range [][]byte{config, nil} {
		b := encodeStateFile(&st, cfg)
		if !json.Valid(b) || strings.Count(string(b), `"config"`) > 1 {
			t.Fatalf("encoded state: %s", b)
		}
		var got State
		file := struct {
			*State
			Config json.RawMessage `json:"config,omitempty"`
		}{State: &got}
		if err := json.Unmarshal(b, &file); err != nil {
			t.Fatal(err)
		}
		if string(file.Config) != string(cfg) {
			t.Fatalf("config: got %s, want %s", file.Config, cfg)
		}
		want := st
		want.Config = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("state: got %+v, want %+v", got, want)
		}
	}
	if b := encodeStateFile(&State{}, config); !json.Valid(b) {
		t.Fatalf("empty state with a config: %s", b)
	}
}
