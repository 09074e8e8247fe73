package supervisor

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
)

func TestRunService(t *testing.T) {
	p := &spec.Project{Name: "demo", Services: []spec.Service{{Name: "web", Image: "busybox", Replicas: 3,
		Tty: true, Command: []string{"httpd"}, Ports: []spec.Port{{Target: 80}}}}}
	for _, c := range []struct {
		name    string
		req     api.RunRequest
		wantTTY bool
		wantIn  bool
	}{
		// A pty for an attached run only when the request asks for one,
		// whatever the service says: a service pty would swallow stdin.
		{"tty", api.RunRequest{TTY: true, Interactive: true}, true, true},
		{"stdin", api.RunRequest{Interactive: true}, false, true},
		// Detached or not attached: the service's own tty.
		{"detach", api.RunRequest{Detach: true, TTY: true, Interactive: true}, true, false},
		{"plain", api.RunRequest{}, true, false},
	} {
		c.req.Project, c.req.Service = p, "web"
		svc, name := runService(c.req)
		if svc.Tty != c.wantTTY || svc.StdinOpen != c.wantIn {
			t.Errorf("%s: tty %v, stdin_open %v; want %v, %v", c.name, svc.Tty, svc.StdinOpen, c.wantTTY, c.wantIn)
		}
		if !strings.HasPrefix(name, "demo-web-run-") || svc.ContainerName != name {
			t.Errorf("%s: container %q (service container_name %q)", c.name, name, svc.ContainerName)
		}
		if svc.Replicas != 1 || svc.Restart.Condition != "no" || len(svc.Ports) != 0 {
			t.Errorf("%s: replicas %d, restart %q, ports %v", c.name, svc.Replicas, svc.Restart.Condition, svc.Ports)
		}
	}
	if p.Services[0].Replicas != 3 || len(p.Services[0].Ports) != 1 {
		t.Error("runService changed the project's service")
	}
	svc, name := runService(api.RunRequest{Project: p, Service: "web", Name: "mine", Command: []string{"sh"}, ServicePorts: true})
	if name != "mine" || len(svc.Command) != 1 || svc.Command[0] != "sh" || len(svc.Ports) != 1 {
		t.Errorf("named run: %q, command %v, ports %v", name, svc.Command, svc.Ports)
	}
}
