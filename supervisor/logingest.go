package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// Log ingestion: a container writes its stdout and stderr straight into
// two raw files opened O_APPEND (no pipe to the daemon, so a dead daemon
// never SIGPIPEs a container). The daemon watches both files with one
// inotify watcher for every container, reads what is new from its saved
// offset, writes JSON-lines entries to the container's LogFile, and punches
// the consumed prefix out of the raw file so its disk use stays bounded.
// After a daemon restart ingestion resumes from the saved offset; lines
// written meanwhile get the time they were ingested.

const (
	ingestBufSize = 32 << 10
	punchEvery    = 64 << 10 // punch holes once this much more was consumed
)

var ingestBufs = sync.Pool{New: func() any { b := make([]byte, ingestBufSize); return &b }}

var streamNames = [2]string{"stdout", "stderr"}

// ingester copies one container's raw output into its log.
type ingester struct {
	lf *LogFile
	// onProgress is called (without mu held) after entries were written,
	// with the consumed offsets.
	onProgress func(offsets [2]int64)

	mu        sync.Mutex // guards the fields below and the streams' fields
	streams   [2]*rawStream
	followers map[chan struct{}]struct{}
	closed    bool
}

// rawStream is one raw file being ingested.
type rawStream struct {
	ing     *ingester
	idx     int
	path    string
	f       *os.File // read+write (hole punching needs write)
	off     int64    // next byte to read
	w       *streamWriter
	punched int64
}

func newIngester(dir string, lf *LogFile, offsets [2]int64, onProgress func([2]int64)) (*ingester, error) {
	ing := &ingester{lf: lf, onProgress: onProgress}
	for i, name := range streamNames {
		p := filepath.Join(dir, name+".raw")
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			ing.closeFiles()
			return nil, err
		}
		ing.streams[i] = &rawStream{ing: ing, idx: i, path: p, f: f, off: offsets[i], punched: offsets[i] &^ 4095,
			w: &streamWriter{l: lf, stream: name}}
	}
	return ing, nil
}

func (ing *ingester) closeFiles() {
	for _, s := range ing.streams {
		if s != nil && s.f != nil {
			s.f.Close()
			s.f = nil
		}
	}
}

// pump reads everything new in every stream.
func (ing *ingester) pump() {
	ing.pumpStreams(ing.streams[0], ing.streams[1])
}

func (ing *ingester) pumpStreams(ss ...*rawStream) {
	bp := ingestBufs.Get().(*[]byte)
	defer ingestBufs.Put(bp)
	buf := *bp
	ing.mu.Lock()
	if ing.closed {
		ing.mu.Unlock()
		return
	}
	wrote := false
	for _, s := range ss {
		if s == nil || s.f == nil {
			continue
		}
		for {
			n, err := s.f.ReadAt(buf, s.off)
			if n > 0 {
				s.w.Write(buf[:n])
				s.off += int64(n)
				wrote = true
			}
			if err != nil || n < len(buf) {
				break
			}
		}
		consumed := s.off - int64(len(s.w.buf))
		if consumed-s.punched >= punchEvery {
			to := consumed &^ 4095
			if punchHole(s.f, s.punched, to-s.punched) == nil {
				s.punched = to
			}
		}
	}
	var offs [2]int64
	for i, s := range ing.streams {
		offs[i] = s.off - int64(len(s.w.buf))
	}
	if wrote {
		ing.notifyLocked()
	}
	ing.mu.Unlock()
	if wrote && ing.onProgress != nil {
		ing.onProgress(offs)
	}
}

// notifyLocked wakes the followers. Needs ing.mu held.
func (ing *ingester) notifyLocked() {
	for ch := range ing.followers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// follow returns a channel that receives a value (coalesced) whenever new
// entries were written, and a function that stops it.
func (ing *ingester) follow() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	ing.mu.Lock()
	if ing.followers == nil {
		ing.followers = map[chan struct{}]struct{}{}
	}
	ing.followers[ch] = struct{}{}
	ing.mu.Unlock()
	return ch, func() {
		ing.mu.Lock()
		delete(ing.followers, ch)
		ing.mu.Unlock()
	}
}

// close stops ingestion (after a last pump by the caller) and closes the
// raw files; the LogFile stays open (the caller closes it).
func (ing *ingester) close() {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	if ing.closed {
		return
	}
	ing.closed = true
	ing.closeFiles()
}

// logWatcher is the one inotify watcher serving every container of an
// engine; it is started by the first add.
type logWatcher struct {
	mu     sync.Mutex // guards the fields below
	w      *fsnotify.Watcher
	byPath map[string]*rawStream
	done   chan struct{}
	closed bool
}

func newLogWatcher() *logWatcher { return &logWatcher{byPath: map[string]*rawStream{}} }

func (lw *logWatcher) add(ing *ingester) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return errors.New("engine closed")
	}
	if lw.w == nil {
		w, err := fsnotify.NewBufferedWatcher(256)
		if err != nil {
			return err
		}
		lw.w, lw.done = w, make(chan struct{})
		go lw.loop(w, lw.done)
	}
	for _, s := range ing.streams {
		if err := lw.w.AddWith(s.path); err != nil {
			return err
		}
		lw.byPath[s.path] = s
	}
	return nil
}

func (lw *logWatcher) remove(ing *ingester) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, s := range ing.streams {
		if lw.byPath[s.path] == s {
			delete(lw.byPath, s.path)
			if lw.w != nil {
				lw.w.Remove(s.path)
			}
		}
	}
}

func (lw *logWatcher) loop(w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if !ev.Has(fsnotify.Write) {
				continue
			}
			lw.mu.Lock()
			s := lw.byPath[ev.Name]
			lw.mu.Unlock()
			if s != nil {
				s.ing.pumpStreams(s)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow loses events, not data: pump everything.
			lw.mu.Lock()
			var all []*rawStream
			for _, s := range lw.byPath {
				all = append(all, s)
			}
			lw.mu.Unlock()
			for _, s := range all {
				s.ing.pumpStreams(s)
			}
		}
	}
}

// Close stops the watcher goroutine and waits for it. Idempotent.
func (lw *logWatcher) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return nil
	}
	lw.closed = true
	w, done := lw.w, lw.done
	lw.mu.Unlock()
	if w == nil {
		return nil
	}
	err := w.Close()
	<-done
	return err
}

// copyConsole copies a tty container's pty master into its log until the
// master reports EOF or EIO (the container's side closed), waking the log's
// followers after each write.
func copyConsole(console *os.File, lf *LogFile, ing *ingester) {
	w := lf.Writer("stdout")
	bp := ingestBufs.Get().(*[]byte)
	defer ingestBufs.Put(bp)
	for {
		n, err := console.Read(*bp)
		if n > 0 {
			w.Write((*bp)[:n])
			if ing != nil {
				ing.mu.Lock()
				ing.notifyLocked()
				ing.mu.Unlock()
			}
		}
		if err != nil {
			break
		}
	}
	w.Close()
	console.Close()
}
