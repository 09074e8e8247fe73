package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// berth watch checks the rules before it brings anything up or starts a
// daemon: these fail with no daemon around (--root is an empty dir).
func TestWatchRuleErrors(t *testing.T) {
	for _, c := range []struct {
		name, compose, want string
		args                []string
	}{
		{"no rules", "services:\n  web:\n    image: busybox\n", "none of the selected services has develop.watch rules", nil},
		{"unknown service", "services:\n  web:\n    image: busybox\n", `no such service: "api"`, []string{"api"}},
		{"exec without command", `services:
  web:
    image: busybox
    develop:
      watch:
        - path: ./src
          target: /app
          action: sync+exec
          exec:
            command: []
`, "web: develop.watch[0] (./src → /app): action sync+exec needs exec.command", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(c.compose), 0o644); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(t.TempDir(), "root")
			args := append([]string{"--root", root, "watch", "--project-directory", dir, "-f", filepath.Join(dir, "compose.yaml")}, c.args...)
			_, _, err := runBerth(t, "", args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("berth watch: %v, want %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(root, "berth.sock")); err == nil {
				t.Error("a daemon was started")
			}
		})
	}
}
