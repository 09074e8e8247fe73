package build

import (
	"context"
	"testing"
)

// benchDockerfile has five steps after FROM: two COPYs, two RUNs and a
// WORKDIR, each making a layer.
const benchDockerfile = `FROM busybox
COPY a.txt /app/a.txt
WORKDIR /app
RUN cat a.txt a.txt > b.txt
COPY conf/ /app/conf/
RUN ls -l /app > listing && wc -c listing
`

// benchNetworks are the build networks the benchmarks compare: the
// default bridge (made and removed by every build that runs a RUN step)
// and the host's namespace.
var benchNetworks = []string{"default", "host"}

func benchEnv(b *testing.B, network string) (*testEnv, Options) {
	e := newTestEnv(b)
	e.b.NetUpstreams = []string{} // the steps resolve nothing
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{"Dockerfile": benchDockerfile, "a.txt": "hello\n", "conf/x.conf": "x=1\n", "conf/y.conf": "y=2\n"})
	return e, Options{ContextDir: dir, Tags: []string{"bench:1"}, Network: network}
}

// BenchmarkBuildCold builds the 5-step Dockerfile with --no-cache, on each
// build network.
func BenchmarkBuildCold(b *testing.B) {
	for _, network := range benchNetworks {
		b.Run("network="+network, func(b *testing.B) {
			e, opts := benchEnv(b, network)
			opts.NoCache = true
			for b.Loop() {
				res, err := e.b.Build(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				if res.Cached != 0 || res.Steps != 6 {
					b.Fatalf("%d steps, %d cached; want 6 run", res.Steps, res.Cached)
				}
			}
		})
	}
}

// BenchmarkBuildCached rebuilds it with every step from the cache, on each
// build network (a cached build runs no RUN step, so makes no network).
func BenchmarkBuildCached(b *testing.B) {
	for _, network := range benchNetworks {
		b.Run("network="+network, func(b *testing.B) {
			e, opts := benchEnv(b, network)
			if _, err := e.b.Build(context.Background(), opts); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := e.b.Build(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				if res.Cached != 5 {
					b.Fatalf("%d cached steps, want 5", res.Cached)
				}
			}
		})
	}
}
