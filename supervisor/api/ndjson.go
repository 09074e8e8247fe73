package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// maxLine bounds one NDJSON line (a project in an event is far below).
const maxLine = 16 << 20

// StreamWriter writes NDJSON messages to an HTTP response, flushing after
// each so the client sees them at once. Safe for concurrent use.
type StreamWriter struct {
	mu  sync.Mutex
	w   io.Writer
	f   http.Flusher
	enc *json.Encoder
	err error
	uc  *net.UnixConn // set by Hijack: SendFile passes files on it
}

// NewStreamWriter starts an NDJSON response on w (status 200).
func NewStreamWriter(w http.ResponseWriter) *StreamWriter {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	s := &StreamWriter{w: w, enc: json.NewEncoder(w)}
	if f, ok := w.(http.Flusher); ok {
		s.f = f
		f.Flush()
	}
	return s
}

// NewWriter writes NDJSON messages to any writer (tests, files).
func NewWriter(w io.Writer) *StreamWriter {
	return &StreamWriter{w: w, enc: json.NewEncoder(w)}
}

// Send writes one message. After the first write error (the client went
// away) every Send returns that error.
func (s *StreamWriter) Send(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.enc.Encode(m); err != nil {
		s.err = err
		return err
	}
	if s.f != nil {
		s.f.Flush()
	}
	return nil
}

// Event sends an Event message.
func (s *StreamWriter) Event(e Event) error { return s.Send(Message{Event: &e}) }

// Log sends a LogLine message.
func (s *StreamWriter) Log(l LogLine) error { return s.Send(Message{Log: &l}) }

// Result sends the closing Result message.
func (s *StreamWriter) Result(r Result) error { return s.Send(Message{Result: &r}) }

// ReadStream reads NDJSON messages from r and calls fn with each, until
// EOF, a decode error or an error from fn (returned as is).
func ReadStream(r io.Reader, fn func(Message) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("bad message from daemon: %w", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return sc.Err()
}
