//go:build !linux

package build

import (
	"context"
	"io"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Building runs containers and writes overlayfs diffs: it needs Linux.

func (r *buildRun) runStep(ctx context.Context, st *stageState, c *instructions.RunCommand, name string) error {
	return ErrNotSupported
}

func writeDiff(upper string, w io.Writer) (int, error) { return 0, ErrNotSupported }

func parseChown(rootfs, spec string) (*owner, error) { return nil, ErrNotSupported }

func mkdirAllIn(rootfs, dir string, own *owner) error { return ErrNotSupported }

func isArchive(p string) bool { return false }

func unpackInto(rootfs, archive, dir string, own *owner) error { return ErrNotSupported }

func copyInto(rootfs string, src *source, matches []string, dest string, destDir bool, o copyOpts) error {
	return ErrNotSupported
}

func (b *Builder) runContainer(ctx context.Context, rootfs string, rs runSpec, c *cache) (int, error) {
	return 0, ErrNotSupported
}

// buildNet is the default RUN network; off Linux there is none.
type buildNet struct{}

func newBuildNet(root string, upstreams []string) *buildNet { return &buildNet{} }

func (n *buildNet) close() error { return nil }

func (b *Builder) cleanStaleNets() {}
