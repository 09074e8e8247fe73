package supervisor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
)

// BenchmarkDaemonUpDown measures up (detached) and down of a project of n
// sleeping busybox services through the API and the real socket.
func BenchmarkDaemonUpDown(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			benchUpDown(b, n)
		})
	}
}

func benchUpDown(b *testing.B, n int) {
	env := newDaemonEnv(b)
	d, err := NewDaemon(env.config())
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	c, err := api.Dial(env.root)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := &spec.Project{Name: env.project, WorkingDir: env.root,
		Networks: []spec.Network{{Name: "default", ActualName: env.project + "_default"}}}
	for k := 0; k < n; k++ {
		p.Services = append(p.Services, spec.Service{Name: fmt.Sprintf("s%02d", k), Image: "busybox:latest", Replicas: 1,
			Command:  []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"},
			Networks: []spec.ServiceNetwork{{Name: "default"}}, Restart: spec.RestartPolicy{Condition: "no"},
			StopGracePeriod: sdur(time.Second)})
	}
	ctx := context.Background()
	var up, down time.Duration
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		t0 := time.Now()
		res, err := c.Up(ctx, api.UpRequest{Project: p, Options: api.UpOptions{Detach: true}}, nil)
		if err != nil || res.Err() != nil {
			b.Fatalf("up: %v %v", err, res.Err())
		}
		t1 := time.Now()
		res, err = c.Down(ctx, api.DownRequest{ProjectName: p.Name}, nil)
		if err != nil || res.Err() != nil {
			b.Fatalf("down: %v %v", err, res.Err())
		}
		up += t1.Sub(t0)
		down += time.Since(t1)
	}
	b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "ms-up/op")
	b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "ms-down/op")
}
