package spec

import (
	"os"
	"path/filepath"
	"testing"
)

const hashStack = `services:
  app:
    image: busybox
    env_file: app.env
    secrets: [pw, tok]
    configs: [conf]
secrets:
  pw:
    file: ./pw.txt
  tok:
    environment: TOKEN
configs:
  conf:
    file: ./app.conf
`

func hashOf(t *testing.T, dir string, environ ...string) string {
	t.Helper()
	p, err := loadDir(t, dir, LoadOptions{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ServiceHash(p, "app", os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 64 {
		t.Fatalf("hash %q is not sha256 hex", h)
	}
	return h
}

func TestServiceHashSeesFileContents(t *testing.T) {
	dir := writeStack(t, map[string]string{
		"compose.yaml": hashStack,
		"app.env":      "A=1\n",
		"pw.txt":       "hunter2\n",
		"app.conf":     "x=1\n",
	})
	base := hashOf(t, dir, "TOKEN=t1")
	if again := hashOf(t, dir, "TOKEN=t1"); again != base {
		t.Fatalf("hash not stable: %s then %s", base, again)
	}
	edit := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	edit("pw.txt", "hunter3\n")
	h1 := hashOf(t, dir, "TOKEN=t1")
	if h1 == base {
		t.Error("editing the secret file did not change the hash")
	}
	edit("app.conf", "x=2\n")
	h2 := hashOf(t, dir, "TOKEN=t1")
	if h2 == h1 {
		t.Error("editing the config file did not change the hash")
	}
	h3 := hashOf(t, dir, "TOKEN=t2")
	if h3 == h2 {
		t.Error("changing the environment-sourced secret did not change the hash")
	}
	// The env_file's variable is also in the environment, but a comment
	// added to the file changes only its contents: still a change.
	edit("app.env", "A=1\n# note\n")
	if h4 := hashOf(t, dir, "TOKEN=t2"); h4 == h3 {
		t.Error("editing the env_file did not change the hash")
	}
}

func TestServiceHashIgnoresNonContainerFields(t *testing.T) {
	a := writeStack(t, map[string]string{"compose.yaml": `services:
  app:
    image: busybox
  db:
    image: postgres
`})
	b := writeStack(t, map[string]string{"compose.yaml": `services:
  app:
    image: busybox
    scale: 3
    depends_on: [db]
    profiles: [x]
    build: ./ctx
    develop:
      watch:
        - path: ./src
          action: rebuild
  db:
    image: postgres
`})
	c := writeStack(t, map[string]string{"compose.yaml": `services:
  app:
    image: busybox
    environment: [A=1]
  db:
    image: postgres
`})
	pa, err := loadDir(t, a, LoadOptions{ProjectName: "p"})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := loadDir(t, b, LoadOptions{ProjectName: "p", Profiles: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := loadDir(t, c, LoadOptions{ProjectName: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ha, _ := ServiceHash(pa, "app", os.ReadFile)
	hb, _ := ServiceHash(pb, "app", os.ReadFile)
	hc, _ := ServiceHash(pc, "app", os.ReadFile)
	if ha != hb {
		t.Errorf("replicas/depends_on/profiles/build/develop changed the hash")
	}
	if ha == hc {
		t.Errorf("environment did not change the hash")
	}
	if _, err := ServiceHash(pa, "nope", os.ReadFile); err == nil {
		t.Error("hash of an unknown service succeeded")
	}
}
