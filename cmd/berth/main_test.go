package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// runBerth runs the berth command tree in-process with stdin and returns
// its stdout, stderr and error.
func runBerth(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	args, err = hoistProjectFlags(cmd, args)
	if err != nil {
		return "", "", err
	}
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestVersion(t *testing.T) {
	out, _, err := runBerth(t, "", "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "berth version ") {
		t.Fatalf("version output %q", out)
	}
	out, _, err = runBerth(t, "", "version", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --format json: %v: %q", err, out)
	}
	if v.Version == "" || v.Os == "" || v.GoVersion == "" {
		t.Fatalf("incomplete version info: %+v", v)
	}
	if _, _, err := runBerth(t, "", "version", "--format", "xml"); err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Fatalf("bad format error: %v", err)
	}
}

func TestRootFlagDefault(t *testing.T) {
	t.Setenv("BERTH_ROOT", "/tmp/berth-root-test")
	cmd := newRootCmd()
	f := cmd.PersistentFlags().Lookup("root")
	if f == nil || f.DefValue != "/tmp/berth-root-test" {
		t.Fatalf("--root default = %v, want BERTH_ROOT", f)
	}
	t.Setenv("BERTH_ROOT", "")
	cmd = newRootCmd()
	if d := cmd.PersistentFlags().Lookup("root").DefValue; d != "/var/lib/berth" {
		t.Fatalf("--root default = %q", d)
	}
}
