package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/supervisor/api"
)

// A progress display shows the steps of up, down, start, stop... as the
// daemon reports them: on a terminal one line per container, network and
// volume redrawn in place (like Compose's "✔ Container demo-web-1
// Started"), otherwise one plain line per change ("Container demo-web-1
// Started").
type progress interface {
	Event(api.Event)
	// Done draws the final state and stops any redrawing.
	Done()
}

func newProgress(w io.Writer, tty bool, title string) progress {
	if tty {
		return newTTYProgress(w, title)
	}
	return &plainProgress{w: w}
}

// progressVerbs maps a step action to its "working" and "done" words.
var progressVerbs = map[string][2]string{
	"create":   {"Creating", "Created"},
	"start":    {"Starting", "Started"},
	"stop":     {"Stopping", "Stopped"},
	"remove":   {"Removing", "Removed"},
	"rm":       {"Removing", "Removed"},
	"recreate": {"Recreating", "Recreated"},
	"pull":     {"Pulling", "Pulled"},
	"restart":  {"Restarting", "Restarted"},
	"kill":     {"Killing", "Killed"},
	"pause":    {"Pausing", "Paused"},
	"unpause":  {"Unpausing", "Unpaused"},
	"wait":     {"Waiting", "Healthy"},
}

// progressLine turns an event into the subject ("Container demo-web-1")
// and status word ("Started") of a progress line, and whether the step is
// finished and whether it failed. ok is false for events that are not
// progress (container output, lifecycle noise).
func progressLine(ev api.Event) (subject, status string, done, failed, ok bool) {
	kind, name := "Container", ev.Container
	switch ev.Action {
	case "network", "volume", "image":
		kind = titleWord(ev.Action)
		if name == "" {
			name = ev.Message
		}
		if name == "" && ev.Project != "" {
			// The daemon removes a project's networks together.
			kind, name = kind+"s", "of "+ev.Project
		}
	case "pull":
		if name == "" {
			kind, name = "Image", ev.Message
		}
	}
	if name == "" {
		return "", "", false, false, false
	}
	subject = kind + " " + name
	if ev.Error != "" || ev.Status == "error" {
		msg := ev.Error
		if msg == "" {
			msg = ev.Message
		}
		return subject, "Error " + msg, true, true, true
	}
	verbs, known := progressVerbs[ev.Action]
	switch {
	case known && ev.Status == "working":
		return subject, verbs[0], false, false, true
	case known && ev.Status == "done":
		return subject, verbs[1], true, false, true
	case ev.Action == "health_status" && ev.Status != "":
		return subject, titleWord(ev.Status), ev.Status != "starting", ev.Status == "unhealthy", true
	case kind != "Container" && ev.Status == "done":
		return subject, "Created", true, false, true
	case kind != "Container" && ev.Status != "":
		return subject, titleWord(ev.Status), ev.Status != "working", false, true
	}
	return "", "", false, false, false
}

func titleWord(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// plainProgress prints a line per change.
type plainProgress struct {
	mu   sync.Mutex
	w    io.Writer
	last map[string]string
}

func (p *plainProgress) Event(ev api.Event) {
	subject, status, _, _, ok := progressLine(ev)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]string{}
	}
	if p.last[subject] == status {
		return
	}
	p.last[subject] = status
	fmt.Fprintf(p.w, "%s %s\n", subject, status)
}

func (p *plainProgress) Done() {}

// ttyProgress redraws a block of lines in place.
type ttyProgress struct {
	w     io.Writer
	title string
	start time.Time

	mu    sync.Mutex // guards the fields below
	items []*progressItem
	index map[string]*progressItem
	drawn int // lines drawn last time
	frame int
	done  bool

	stop chan struct{}
	wg   sync.WaitGroup
}

type progressItem struct {
	subject, status string
	finished        bool
	failed          bool
	start, end      time.Time
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newTTYProgress(w io.Writer, title string) *ttyProgress {
	p := &ttyProgress{w: w, title: title, start: time.Now(), index: map[string]*progressItem{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.frame++
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *ttyProgress) Event(ev api.Event) {
	subject, status, finished, failed, ok := progressLine(ev)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	it := p.index[subject]
	if it == nil {
		it = &progressItem{subject: subject, start: time.Now()}
		p.index[subject] = it
		p.items = append(p.items, it)
	} else if it.finished && !finished {
		it.start = time.Now() // a new step on the same thing
	}
	it.status, it.finished, it.failed = status, finished, failed
	if finished {
		it.end = time.Now()
	}
	p.drawLocked()
}

func (p *ttyProgress) Done() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	p.drawLocked()
	p.mu.Unlock()
}

// drawLocked redraws every line: cursor up over the last drawing, then
// each line cleared and written again.
func (p *ttyProgress) drawLocked() {
	if len(p.items) == 0 {
		return
	}
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	finished := 0
	width := 0
	for _, it := range p.items {
		if it.finished {
			finished++
		}
		width = max(width, utf8.RuneCountInString(it.subject))
	}
	verb := "Running"
	fmt.Fprintf(&b, "\x1b[2K[+] %s %d/%d\n", verb, finished, len(p.items))
	for _, it := range p.items {
		mark := colorize("34", spinnerFrames[p.frame%len(spinnerFrames)])
		switch {
		case it.failed:
			mark = colorize("31", "✘")
		case it.finished:
			mark = colorize("32", "✔")
		}
		end := it.end
		if !it.finished {
			end = time.Now()
		}
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(it.subject))
		fmt.Fprintf(&b, "\x1b[2K %s %s%s  %-10s %.1fs\n", mark, it.subject, pad, it.status, end.Sub(it.start).Seconds())
	}
	p.drawn = len(p.items) + 1
	io.WriteString(p.w, b.String())
}
