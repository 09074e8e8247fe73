package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const configStack = `name: demo
services:
  web:
    image: nginx:${TAG:-1.27}
    ports: ["8080:80"]
    depends_on: [api]
    networks: [front]
    gpus: all
  api:
    build: ./api
    secrets: [token]
    volumes: [data:/data]
    networks: [front, back]
  debug:
    image: busybox
    profiles: [debug]
networks:
  front: {}
  back: {}
volumes:
  data: {}
secrets:
  token:
    file: ./token.txt
`

func TestConfigCommand(t *testing.T) {
	t.Setenv("COMPOSE_PROFILES", "")
	t.Setenv("COMPOSE_PROJECT_NAME", "")
	t.Setenv("COMPOSE_FILE", "")
	dir := writeFiles(t, map[string]string{"compose.yaml": configStack, "token.txt": "s3cret\n", ".env": "TAG=1.28\n"})
	f := filepath.Join(dir, "compose.yaml")

	out, errOut, err := runBerth(t, "", "config", "-f", f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: demo\n", "image: nginx:1.28\n", "published: \"8080\"", "debug"} {
		if want == "debug" {
			if strings.Contains(out, "debug:") {
				t.Errorf("disabled service debug printed:\n%s", out)
			}
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("yaml output lacks %q:\n%s", want, out)
		}
	}
	if errOut != "berth: warning: service \"web\": ignoring \"gpus\" (not supported)\n" {
		t.Errorf("stderr %q", errOut)
	}

	out, _, err = runBerth(t, "", "config", "-f", f, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name     string                    `json:"name"`
		Services map[string]map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if m.Name != "demo" || len(m.Services) != 2 || m.Services["web"]["image"] != "nginx:1.28" {
		t.Errorf("json output: %+v", m)
	}

	lists := []struct {
		args []string
		want string
	}{
		{[]string{"--services"}, "api\nweb\n"},
		{[]string{"--services", "--profile", "debug"}, "api\ndebug\nweb\n"},
		{[]string{"--services", "debug"}, "debug\n"},
		{[]string{"--services", "web"}, "api\nweb\n"},
		{[]string{"--volumes"}, "data\n"},
		{[]string{"--networks"}, "back\nfront\n"},
		{[]string{"--profiles"}, "debug\n"},
		{[]string{"--images"}, "demo-api\nnginx:1.28\n"},
		{[]string{"-q"}, ""},
		{[]string{"-p", "other", "--images"}, "other-api\nnginx:1.28\n"},
		{[]string{"--env-file", filepath.Join(dir, "token.txt"), "--images"}, "demo-api\nnginx:1.27\n"},
	}
	for _, c := range lists {
		out, _, err := runBerth(t, "", append([]string{"config", "-f", f}, c.args...)...)
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if out != c.want {
			t.Errorf("%v: got %q, want %q", c.args, out, c.want)
		}
	}

	// --hash: one "service hash" line each, stable, and the secret file's
	// contents count.
	hash := func() string {
		out, _, err := runBerth(t, "", "config", "-f", f, "--hash", "*")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	h1 := hash()
	ls := strings.Split(strings.TrimSpace(h1), "\n")
	if len(ls) != 2 || !strings.HasPrefix(ls[0], "api ") || !strings.HasPrefix(ls[1], "web ") || len(ls[0]) != len("api ")+64 {
		t.Fatalf("--hash output %q", h1)
	}
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := hash()
	if h2 == h1 || strings.Split(h2, "\n")[1] != ls[1] {
		t.Errorf("after editing api's secret: %q, before %q (want only api to change)", h2, h1)
	}
	out, _, err = runBerth(t, "", "config", "-f", f, "--hash", "web")
	if err != nil || out != ls[1]+"\n" {
		t.Errorf("--hash web: %q, %v", out, err)
	}
	if _, _, err := runBerth(t, "", "config", "-f", f, "--hash", "nope"); err == nil {
		t.Error("--hash nope succeeded")
	}

	// Through stdin, --format berth.
	out, _, err = runBerth(t, "services:\n  x:\n    image: busybox\n", "config", "-f", "-", "-p", "piped", "--project-directory", dir, "--format", "berth")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"name": "piped"`) || !strings.Contains(out, `"replicas": 1`) {
		t.Errorf("--format berth output:\n%s", out)
	}
}

func TestConfigQuietReportsErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80:80\"\n"})
	out, _, err := runBerth(t, "", "config", "-q", "--project-directory", dir, "-f", filepath.Join(dir, "compose.yaml"))
	if err == nil {
		t.Fatal("config -q accepted an invalid port")
	}
	if out != "" {
		t.Errorf("stdout %q", out)
	}
	if !strings.HasSuffix(err.Error(), `compose.yaml:5:9: services.web.ports[0]: invalid port "80:80:80"`) {
		t.Errorf("error %q", err)
	}
	if _, _, err := runBerth(t, "", "config", "--format", "toml", "-f", filepath.Join(dir, "compose.yaml")); err == nil || !strings.Contains(err.Error(), "unknown --format") {
		t.Errorf("bad format: %v", err)
	}
}
