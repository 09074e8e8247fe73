package scheduler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// stackFile200 is a 200-service Compose file: a chain of health-gated
// dependencies with fan-in every tenth service, ports, volumes, two
// networks and resource limits.
func stackFile200() string {
	var b strings.Builder
	b.WriteString("name: bench\nservices:\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "  s%03d:\n    image: busybox:latest\n    command: [\"sleep\", \"1000\"]\n", i)
		fmt.Fprintf(&b, "    ports: [\"%d:80\"]\n    volumes: [\"v%03d:/data\"]\n    networks: [front, back]\n", 20000+i, i)
		b.WriteString("    mem_limit: 64m\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 5s\n")
		if i > 0 {
			fmt.Fprintf(&b, "    depends_on:\n      s%03d:\n        condition: service_healthy\n", i-1)
			if i%10 == 0 && i >= 20 {
				fmt.Fprintf(&b, "      s%03d:\n        condition: service_started\n", i-20)
			}
		}
	}
	b.WriteString("networks:\n  front: {}\n  back: {}\nvolumes:\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "  v%03d: {}\n", i)
	}
	return b.String()
}

// BenchmarkLoadPlan200 is the whole path from a Compose file to a plan:
// load + validate + normalize (spec) and graph + up plan (scheduler).
func BenchmarkLoadPlan200(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(stackFile200()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := spec.Load(context.Background(), spec.LoadOptions{WorkingDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		plan, err := PlanUp(p, nil, UpOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(plan.Steps) != 400 {
			b.Fatalf("%d steps, want 400 (create+start of 200)", len(plan.Steps))
		}
	}
}
