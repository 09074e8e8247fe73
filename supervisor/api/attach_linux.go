package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// An attached run (RunRequest.Attached) passes files from the daemon to
// the client with SCM_RIGHTS on the API's unix socket. Each file travels
// with the bytes of the Attach message announcing it, in one sendmsg; the
// client reads the connection with recvmsg only, so the file has arrived
// by the time the message is parsed. A plain read would drop it.

// fileConn is the client's end of an attached run's connection: it
// keeps the files that arrive with the bytes it reads.
type fileConn struct {
	*net.UnixConn
	mu    sync.Mutex
	files []*os.File // received, not yet taken
	oob   []byte
}

func dialFiles(ctx context.Context, sock string) (*fileConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	// Room for a few descriptors per read: the daemon sends one per
	// message.
	return &fileConn{UnixConn: c.(*net.UnixConn), oob: make([]byte, unix.CmsgSpace(4*4))}, nil
}

// Read reads like recv, keeping any file that comes along (close-on-exec:
// Go's ReadMsgUnix asks for MSG_CMSG_CLOEXEC).
func (c *fileConn) Read(p []byte) (int, error) {
	n, oobn, _, _, err := c.ReadMsgUnix(p, c.oob)
	if oobn > 0 {
		c.keep(c.oob[:oobn])
	}
	if n < 0 { // on some errors
		n = 0
	}
	if errors.Is(err, io.EOF) {
		err = io.EOF // unwrapped, as readers expect (ReadMsgUnix wraps it)
	}
	return n, err
}

func (c *fileConn) keep(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			c.files = append(c.files, os.NewFile(uintptr(fd), "attached"))
		}
	}
}

// takeFile returns the oldest file received and not yet taken, or nil.
func (c *fileConn) takeFile() *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.files) == 0 {
		return nil
	}
	f := c.files[0]
	c.files = c.files[1:]
	return f
}

// Close closes the connection and the files nobody took.
func (c *fileConn) Close() error {
	c.mu.Lock()
	for _, f := range c.files {
		f.Close()
	}
	c.files = nil
	c.mu.Unlock()
	return c.UnixConn.Close()
}

// Hijack takes over the connection of a request to answer it with an
// NDJSON stream that can pass files (StreamWriter.SendFile). It writes
// the 200 response head itself (the body ends when the connection
// closes) and returns the stream, a channel closed once the client's end
// of the connection has closed, and the connection, for the caller to
// close when the stream is over. The request must have come over a unix
// socket, and its body must have been read.
func Hijack(w http.ResponseWriter) (_ *StreamWriter, gone <-chan struct{}, _ io.Closer, retErr error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, nil, errors.New("attach: the connection cannot be taken over")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		if retErr != nil {
			conn.Close()
		}
	}()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		b, _ := json.Marshal(ErrorBody{Error: "attach: needs a unix socket connection", Kind: KindBadRequest})
		_, _ = io.WriteString(conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"+string(b))
		return nil, nil, nil, errors.New("attach: not a unix socket connection")
	}
	// No deadline the server set for reading the request outlives it.
	if err := uc.SetDeadline(time.Time{}); err != nil {
		return nil, nil, nil, err
	}
	if _, err := io.WriteString(uc, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"); err != nil {
		return nil, nil, nil, err
	}
	// The client sends nothing after its request: a read ends only when
	// its end closes (or ours does).
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		_, _ = io.Copy(io.Discard, uc)
	}()
	return &StreamWriter{w: uc, enc: json.NewEncoder(uc), uc: uc}, ch, uc, nil
}

// SendFile sends m with f attached (SCM_RIGHTS) on a stream made by
// Hijack. f stays the caller's to close.
func (s *StreamWriter) SendFile(m Message, f *os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.uc == nil {
		return errors.New("attach: this stream cannot pass files")
	}
	n, _, err := s.uc.WriteMsgUnix(b, unix.UnixRights(int(f.Fd())), nil)
	if err == nil && n < len(b) {
		_, err = s.uc.Write(b[n:])
	}
	if err != nil {
		s.err = err
	}
	return err
}
