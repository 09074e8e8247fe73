//go:build !linux

package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
)

var errAttachUnsupported = errors.New("attached runs (pty, stdin) are supported on Linux only")

type fileConn struct{ net.Conn }

func dialFiles(context.Context, string) (*fileConn, error) { return nil, errAttachUnsupported }

func (c *fileConn) takeFile() *os.File { return nil }

// Hijack is supported on Linux only.
func Hijack(http.ResponseWriter) (*StreamWriter, <-chan struct{}, io.Closer, error) {
	return nil, nil, nil, errAttachUnsupported
}

// SendFile is supported on Linux only.
func (s *StreamWriter) SendFile(Message, *os.File) error { return errAttachUnsupported }
