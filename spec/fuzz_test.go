package spec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary bytes as a single stack file (through stdin,
// so no file is written per input) and checks the loader's contract: no
// panic, either a Project or an error but never both, and errors that
// come from the input wrap ErrInvalid.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*/*.yaml", "testdata/valid/*/*/*.yaml", "testdata/invalid/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(aliasBomb(3)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 3*time.Second && os.Getenv("BERTH_FUZZ_SLOW") != "" {
				t.Fatalf("slow input: %v", d)
			}
		}()
		p, err := Load(context.Background(), LoadOptions{
			Files: []string{"-"}, WorkingDir: dir, ProjectName: "fuzz",
			Stdin:   strings.NewReader(string(data)),
			Environ: []string{"HOME=/nonexistent", "SET=value"},
		})
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with a non-nil project", err)
			}
			if strings.Contains(err.Error(), "internal error while loading") {
				t.Fatalf("loader panicked: %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil project without error")
		}
		for _, s := range p.Services {
			if _, err := ServiceHash(p, s.Name, os.ReadFile); err != nil && errors.Is(err, ErrInvalid) {
				t.Fatalf("hash of loaded service %q: %v", s.Name, err)
			}
		}
	})
}

func gen200(n int) string {
	var b strings.Builder
	b.WriteString("name: bench\nx-common: &common\n  restart: unless-stopped\n  logging:\n    driver: json-file\n    options: {max-size: 10m}\n")
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  svc%03d:
    <<: *common
    image: "registry.example/app%03d:${TAG:-1.0}"
    environment:
      INDEX: "%d"
      PEER: svc%03d
    ports: ["%d:80"]
    volumes: ["data%03d:/data", "./conf/%03d:/etc/app:ro"]
    networks: [front, back]
    healthcheck:
      test: ["CMD", "true"]
      interval: 10s
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 128M}
`, i, i, i, (i+1)%n, 10000+i, i, i)
		if i > 0 {
			fmt.Fprintf(&b, "    depends_on:\n      svc%03d:\n        condition: service_healthy\n", i-1)
		}
	}
	b.WriteString("networks:\n  front: {}\n  back: {internal: true}\nvolumes:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  data%03d: {}\n", i)
	}
	return b.String()
}

// BenchmarkLoad200 loads, validates and normalizes a 200-service stack.
func BenchmarkLoad200(b *testing.B) {
	dir := writeStack(b, map[string]string{"compose.yaml": gen200(200)})
	b.ReportAllocs()
	for b.Loop() {
		p, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Services) != 200 {
			b.Fatalf("%d services", len(p.Services))
		}
	}
}

// BenchmarkCheck200 is berth's own share of BenchmarkLoad200: parsing,
// guarding and checking the node tree, without compose-go.
func BenchmarkCheck200(b *testing.B) {
	content := []byte(gen200(200))
	b.ReportAllocs()
	for b.Loop() {
		f, err := parseYAML("compose.yaml", "compose.yaml", content)
		if err != nil {
			b.Fatal(err)
		}
		if err := validateFile(f, func(string) (string, bool) { return "", false }, func(string) {}); err != nil {
			b.Fatal(err)
		}
	}
}
