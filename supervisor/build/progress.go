package build

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress writes BuildKit-style plain output:
//
//	#3 [build 2/5] RUN make
//	#3 0.214 cc -o app main.c
//	#3 DONE 0.4s
//
// Vertex numbers are shared by stages running in parallel; each line is
// written whole under a lock.
type progress struct {
	mu   sync.Mutex // guards w and next
	w    io.Writer
	next int
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w}
}

// vertex is one numbered step of the output.
type vertex struct {
	p     *progress
	n     int
	start time.Time
}

func (p *progress) vertex(name string) *vertex {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	fmt.Fprintf(p.w, "#%d %s\n", p.next, name)
	return &vertex{p: p, n: p.next, start: time.Now()}
}

// log writes a line of the step's output, stamped with the seconds since it
// started.
func (v *vertex) log(line string) {
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	fmt.Fprintf(v.p.w, "#%d %.3f %s\n", v.n, time.Since(v.start).Seconds(), line)
}

// note writes a line without a timestamp (e.g. "writing image ...").
func (v *vertex) note(format string, args ...any) {
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	fmt.Fprintf(v.p.w, "#%d %s\n", v.n, fmt.Sprintf(format, args...))
}

func (v *vertex) done() {
	v.note("DONE %.1fs", time.Since(v.start).Seconds())
}

func (v *vertex) cached() { v.note("CACHED") }

func (v *vertex) fail(err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	v.note("ERROR: %s", msg)
}

// lineWriter splits written bytes into lines for a vertex and keeps the last
// lines for error reports.
type lineWriter struct {
	v    *vertex
	buf  []byte
	tail []string
	max  int
}

func (lw *lineWriter) Write(b []byte) (int, error) {
	lw.buf = append(lw.buf, b...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			break
		}
		lw.line(string(lw.buf[:i]))
		lw.buf = lw.buf[i+1:]
	}
	return len(b), nil
}

func (lw *lineWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	lw.v.log(s)
	lw.tail = append(lw.tail, s)
	if len(lw.tail) > lw.max {
		lw.tail = lw.tail[len(lw.tail)-lw.max:]
	}
}

func (lw *lineWriter) flush() {
	if len(lw.buf) > 0 {
		lw.line(string(lw.buf))
		lw.buf = nil
	}
}
