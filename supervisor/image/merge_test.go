package image

import (
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

func TestResolve(t *testing.T) {
	img := &Config{
		Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"},
		Env: []string{"PATH=/usr/bin", "NGINX_VERSION=1.27"}, WorkingDir: "/srv", User: "101",
		ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/cache"}, StopSignal: "SIGQUIT",
		Healthcheck: &Healthcheck{Test: []string{"CMD", "check"}, Interval: 30 * time.Second, Retries: 3},
		Labels:      map[string]string{"maintainer": "img", "keep": "1"},
	}
	dur := func(d time.Duration) *spec.Duration { x := spec.Duration(d); return &x }
	three := 3
	for name, tc := range map[string]struct {
		svc  spec.Service
		want Resolved
	}{
		"image defaults": {spec.Service{}, Resolved{
			Entrypoint: img.Entrypoint, Cmd: img.Cmd, Args: []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"},
			Env: img.Env, WorkingDir: "/srv", User: "101", StopSignal: "SIGQUIT",
			Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "check"}, Interval: dur(30 * time.Second), Retries: &three},
			Labels:      map[string]string{"maintainer": "img", "keep": "1"}, ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/cache"},
		}},
		"service overrides": {spec.Service{
			Command: []string{"nginx", "-T"}, Environment: []string{"NGINX_VERSION=x", "NEW=1"}, WorkingDir: "/app", User: "root",
			StopSignal: "SIGTERM", Labels: map[string]string{"maintainer": "svc"}, Expose: []string{"8080", "53/udp"},
			Healthcheck: &spec.Healthcheck{Interval: dur(time.Second)},
		}, Resolved{
			Entrypoint: img.Entrypoint, Cmd: []string{"nginx", "-T"}, Args: []string{"/docker-entrypoint.sh", "nginx", "-T"},
			Env: []string{"PATH=/usr/bin", "NGINX_VERSION=x", "NEW=1"}, WorkingDir: "/app", User: "root", StopSignal: "SIGTERM",
			Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "check"}, Interval: dur(time.Second), Retries: &three},
			Labels:      map[string]string{"maintainer": "svc", "keep": "1"}, ExposedPorts: []string{"53/udp", "80/tcp", "8080/tcp"}, Volumes: []string{"/cache"},
		}},
		"entrypoint drops image cmd": {spec.Service{Entrypoint: []string{"sh", "-c"}, Healthcheck: &spec.Healthcheck{Disable: true}}, Resolved{
			Entrypoint: []string{"sh", "-c"}, Args: []string{"sh", "-c"}, Env: img.Env, WorkingDir: "/srv", User: "101", StopSignal: "SIGQUIT",
			Labels: map[string]string{"maintainer": "img", "keep": "1"}, ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/cache"},
		}},
		"explicit empty entrypoint and command": {spec.Service{Entrypoint: []string{}, Command: []string{"echo"}, Healthcheck: &spec.Healthcheck{Test: []string{"NONE"}}}, Resolved{
			Entrypoint: []string{}, Cmd: []string{"echo"}, Args: []string{"echo"}, Env: img.Env, WorkingDir: "/srv", User: "101", StopSignal: "SIGQUIT",
			Labels: map[string]string{"maintainer": "img", "keep": "1"}, ExposedPorts: []string{"80/tcp"}, Volumes: []string{"/cache"},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := img.Resolve(&tc.svc); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if got := (*Config)(nil).Resolve(&spec.Service{Command: []string{"x"}}); got.WorkingDir != "/" || !reflect.DeepEqual(got.Args, []string{"x"}) {
		t.Fatalf("nil config: %+v", got)
	}
}
