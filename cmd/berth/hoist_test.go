package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Project flags before the command, as `docker compose -f x.yml -p n
// config` takes them, reach the command.
func TestProjectFlagsBeforeCommand(t *testing.T) {
	t.Setenv("COMPOSE_PROFILES", "")
	t.Setenv("COMPOSE_PROJECT_NAME", "")
	t.Setenv("COMPOSE_FILE", "")
	dir := writeFiles(t, map[string]string{
		"a.yml": "services:\n  web:\n    image: busybox\n  dbg:\n    image: busybox\n    profiles: [debug]\n",
		"b.yml": "services:\n  api:\n    image: busybox\n",
	})
	a, b := filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", a, "-f", b, "config", "--services"}, "api\nweb\n"},
		{[]string{"--file=" + a, "--profile", "debug", "config", "--services"}, "dbg\nweb\n"},
		{[]string{"-f" + a, "-p", "other", "config", "--format", "json"}, `"name": "other"`},
		{[]string{"--root", t.TempDir(), "--project-name=x2", "--file", a, "config"}, "name: x2"},
		// Behind the command the flags work as before.
		{[]string{"config", "-f", a, "--services"}, "web\n"},
	} {
		out, errOut, err := runBerth(t, "", tc.args...)
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(tc.args, " "), err, errOut)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("berth %s printed %q, want it to contain %q", strings.Join(tc.args, " "), out, tc.want)
		}
	}
}

func TestHoistProjectFlags(t *testing.T) {
	root := newRootCmd()
	for _, tc := range []struct {
		in, want []string
		err      string
	}{
		// logs -f is --follow: a hoisted -f becomes --file.
		{in: []string{"-f", "x.yml", "logs", "-f", "web"}, want: []string{"logs", "--file", "x.yml", "-f", "web"}},
		{in: []string{"-p", "n", "rm", "-f"}, want: []string{"rm", "--project-name", "n", "-f"}},
		{in: []string{"-f", "-", "up", "-d"}, want: []string{"up", "--file", "-", "-d"}},
		{in: []string{"--root", "/r", "-f", "x", "ps"}, want: []string{"--root", "/r", "ps", "--file", "x"}},
		// Nothing to move: untouched.
		{in: []string{"up", "-f", "x"}, want: []string{"up", "-f", "x"}},
		{in: []string{"--root", "/r", "ps"}, want: []string{"--root", "/r", "ps"}},
		// An unknown flag first: cobra reports it.
		{in: []string{"-f", "x", "--bogus", "up"}, want: []string{"-f", "x", "--bogus", "up"}},
		{in: []string{"-f"}, err: "flag needs an argument: -f"},
		{in: []string{"-f", "x.yml"}, err: "without a command"},
		{in: []string{"-f", "x.yml", "image", "ls"}, err: "'berth image' does not read a stack file"},
	} {
		got, err := hoistProjectFlags(root, tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
