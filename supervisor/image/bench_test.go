package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// BenchmarkPullUnpack pulls a 200 MiB image (4 layers of 50 MiB of random
// data, gzip) from the in-process registry on loopback into an empty store
// and unpacks it; MB/s is per byte of image.
func BenchmarkPullUnpack(b *testing.B) {
	const layerSize, layers = 50 << 20, 4
	reg := newTestRegistry(b, nil)
	img, err := random.Image(layerSize, layers)
	if err != nil {
		b.Fatal(err)
	}
	reg.push(b, reg.ref("big:200m"), img)
	b.SetBytes(layerSize * layers)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := filepath.Join(b.TempDir(), "images")
		s, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Pull(context.Background(), reg.ref("big:200m"), PullOptions{Keychain: anon}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(root)
		b.StartTimer()
	}
}

// BenchmarkPrepare times making a container rootfs (overlay mount) from a
// stored image; the goal is under 5 ms.
func BenchmarkPrepare(b *testing.B) {
	requirePrivileged(b)
	for _, tc := range []struct {
		n      int64
		legacy bool
	}{{5, false}, {130, false}, {5, true}, {130, true}} {
		n := tc.n
		b.Run(fmt.Sprintf("layers=%d/legacy=%v", n, tc.legacy), func(b *testing.B) {
			testForceLegacyMount = tc.legacy
			defer func() { testForceLegacyMount = false }()
			reg := newTestRegistry(b, nil)
			img, err := random.Image(64, n)
			if err != nil {
				b.Fatal(err)
			}
			reg.push(b, reg.ref("prep:1"), img)
			s := openTestStore(b)
			im := pull(b, s, reg.ref("prep:1"), PullOptions{})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
				_, cleanup, err := s.Prepare(id, im)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := cleanup(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
