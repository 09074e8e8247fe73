//go:build !linux

package image

import (
	"context"
	"io"
	"os"
)

// ErrNeedRoot is returned when a layer holds something only root can make.
var ErrNeedRoot = ErrNotSupported

var testHookUnpackEntry func(name string)

var testForceLegacyMount bool

func decompress(r io.Reader) (io.ReadCloser, error) { return nil, ErrNotSupported }

func unpackTar(r io.Reader, dir string) (string, error) { return "", ErrNotSupported }

func (s *Store) unpackLayer(ctx context.Context, blob, diffID string) error {
	return ErrNotSupported
}

func shortLink(diffHex string) string { return diffHex }

// Prepare needs overlayfs: Linux only.
func (s *Store) Prepare(id string, img *Image) (string, func() error, error) {
	return "", nil, ErrNotSupported
}

// Unmount needs Linux.
func (s *Store) Unmount(id string) error { return ErrNotSupported }

// Release needs Linux.
func (s *Store) Release(id string) error { return ErrNotSupported }

func isTerminal(f *os.File) bool { return false }
