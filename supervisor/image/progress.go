package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// progress shows a pull like docker pull: one redrawn bar per layer on a
// terminal, one plain line per state change otherwise. A nil writer shows
// nothing.
type progress struct {
	w    io.Writer
	tty  bool
	verb string // "Downloading", or "Loading" for archives

	mu      sync.Mutex // guards everything below and writes to w
	bars    []*bar
	drawn   int  // lines of bars on screen (tty)
	fetched bool // some layer was downloaded
	last    time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, verb: "Downloading"}
	if f, ok := w.(*os.File); ok {
		p.tty = isTerminal(f)
	}
	return p
}

// line prints a line of text outside the bars.
func (p *progress) line(s string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && len(p.bars) > 0 {
		// Bars so far are finished: draw them once more and leave them
		// above; later bars start below this line.
		p.redrawLocked()
		p.bars, p.drawn = nil, 0
	}
	fmt.Fprintln(p.w, s)
}

func (p *progress) bar(id string, total int64, state string) *bar {
	b := &bar{p: p, id: id, total: total, state: state}
	p.mu.Lock()
	p.bars = append(p.bars, b)
	p.mu.Unlock()
	b.changed(true)
	return b
}

func (p *progress) close() {
	if p.w == nil || !p.tty {
		return
	}
	p.mu.Lock()
	p.redrawLocked()
	p.mu.Unlock()
}

// redrawLocked rewrites every bar in place.
func (p *progress) redrawLocked() {
	var sb strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", p.drawn)
	}
	for _, b := range p.bars {
		sb.WriteString("\x1b[2K")
		sb.WriteString(b.renderLocked())
		sb.WriteByte('\n')
	}
	p.drawn = len(p.bars)
	p.last = time.Now()
	io.WriteString(p.w, sb.String())
}

// downloaded reports whether any bar got bytes.
func (p *progress) downloaded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetched
}

// bar is one layer's line.
type bar struct {
	p     *progress
	id    string
	total int64
	cur   int64  // guarded by p.mu
	state string // guarded by p.mu
}

func (b *bar) status(s string) {
	b.p.mu.Lock()
	b.state = s
	b.p.mu.Unlock()
	b.changed(true)
}

func (b *bar) done(s string) { b.status(s) }

func (b *bar) reset() {
	b.p.mu.Lock()
	b.cur = 0
	b.p.mu.Unlock()
}

func (b *bar) add(n int64) {
	b.p.mu.Lock()
	b.cur += n
	b.p.fetched = true
	b.p.mu.Unlock()
	b.changed(false)
}

// changed prints the new state: at once for a state change, at most ten
// times a second for byte counts, and never byte counts without a tty.
func (b *bar) changed(state bool) {
	p := b.p
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		if state {
			fmt.Fprintf(p.w, "%s: %s\n", b.id, b.state)
		}
		return
	}
	if !state && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.redrawLocked()
}

func (b *bar) renderLocked() string {
	if b.state != b.p.verb || b.total <= 0 {
		return fmt.Sprintf("%s: %s", b.id, b.state)
	}
	const width = 40
	frac := float64(b.cur) / float64(b.total)
	if frac > 1 {
		frac = 1
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("%s: %s [%s] %s/%s", b.id, b.state, bar, humanSize(b.cur), humanSize(b.total))
}

// humanSize formats bytes like docker (decimal units).
func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 || u == "GB" {
			if u == "B" {
				return fmt.Sprintf("%d%s", n, u)
			}
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= 1000
	}
	return ""
}
