package main

import (
	"path/filepath"
	"strings"
	"testing"
)

const buildYAML = `name: demo
services:
  app:
    build: .
    command: ["sleep", "1000"]
  tagged:
    build: .
    image: example.test/tagged:v1
  db:
    image: busybox:latest
    command: ["sleep", "1000"]
`

// Flag conflicts and bad watch rules fail before anything is built or
// reaches the daemon.
func TestUpBuildFlagValidation(t *testing.T) {
	d := newFakeDaemon(t)
	f := filepath.Join(stackDir(t, buildYAML), "compose.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--build", "--no-build"}, "--build and --no-build are incompatible"},
		{[]string{"--watch", "--no-start"}, "--watch and --no-start are incompatible"},
		{[]string{"-d", "--watch"}, "none of the selected services has develop.watch rules"},
	} {
		_, _, err := d.run(append([]string{"up", "-f", f}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("up %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	if len(d.ups) != 0 {
		t.Errorf("invalid flags still reached the daemon: %d up requests", len(d.ups))
	}
}

// up --no-build with a build: service whose image was never built fails
// with a pointer at --build, before the daemon sees anything.
func TestUpNoBuildMissingImage(t *testing.T) {
	d := newFakeDaemon(t)
	f := filepath.Join(stackDir(t, buildYAML), "compose.yaml")
	_, _, err := d.run("up", "-d", "--no-build", "-f", f)
	if err == nil || !strings.Contains(err.Error(), `service "app": image demo-app is not built and --no-build was given (run `+"`berth up --build`") {
		t.Fatalf("up --no-build: %v", err)
	}
	if len(d.ups) != 0 {
		t.Errorf("%d up requests reached the daemon", len(d.ups))
	}
}

// Services that up does not bring up are not built, but the project sent
// to the daemon names the image every build: service runs, so what the
// daemon saves and restarts later runs the built images.
func TestUpSetsBuiltImageNames(t *testing.T) {
	d := newFakeDaemon(t)
	f := filepath.Join(stackDir(t, buildYAML), "compose.yaml")
	_, errOut, err := d.run("up", "-d", "--build", "-f", f, "db")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut, "Built") {
		t.Errorf("up db built something:\n%s", errOut)
	}
	if len(d.ups) != 1 {
		t.Fatalf("%d up requests", len(d.ups))
	}
	want := map[string]string{
		"app":    "docker.io/library/demo-app:latest",
		"tagged": "example.test/tagged:v1",
		"db":     "busybox:latest",
	}
	for _, s := range d.ups[0].Project.Services {
		if s.Image != want[s.Name] {
			t.Errorf("service %s: image %q, want %q", s.Name, s.Image, want[s.Name])
		}
	}
}
