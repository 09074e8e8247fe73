package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/spec"
)

// Log rotation defaults: unlike Docker's json-file driver, berth bounds
// logs unless told otherwise.
const (
	defaultLogMaxSize  = 10 << 20
	defaultLogMaxFiles = 3
	maxLogLine         = 16 << 10 // longer lines are split into several entries
)

// LogEntry is one line of container output, as stored: JSON lines in
// the format of Docker's json-file driver.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"` // stdout or stderr
	Time   time.Time `json:"time"`
}

// LogOptions bound a container's log files.
type LogOptions struct {
	MaxSize  int64 // bytes per file before rotation
	MaxFiles int   // files kept, the current one included
}

// ParseLogOptions reads logging.options max-size and max-file.
func ParseLogOptions(l *spec.Logging) (LogOptions, error) {
	o := LogOptions{MaxSize: defaultLogMaxSize, MaxFiles: defaultLogMaxFiles}
	if l == nil {
		return o, nil
	}
	if l.Driver != "" && l.Driver != "json-file" && l.Driver != "local" {
		return o, fmt.Errorf("logging.driver %q: berth writes json-file logs only", l.Driver)
	}
	if s, ok := l.Options["max-size"]; ok {
		n, err := parseByteSize(s)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("logging.options.max-size: invalid size %q", s)
		}
		o.MaxSize = n
	}
	if s, ok := l.Options["max-file"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return o, fmt.Errorf("logging.options.max-file: invalid count %q", s)
		}
		o.MaxFiles = n
	}
	return o, nil
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

// LogFile writes a container's output to path, rotating it to path.1,
// path.2, ... as it grows. Streams are written through Writer; each
// complete line becomes one entry. Safe for concurrent use.
type LogFile struct {
	path string
	opts LogOptions
	now  func() time.Time

	mu   sync.Mutex // guards the fields below
	f    *os.File
	size int64
}

// OpenLogFile opens (appending) or creates the log at path.
func OpenLogFile(path string, opts LogOptions) (*LogFile, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = defaultLogMaxSize
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = defaultLogMaxFiles
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &LogFile{path: path, opts: opts, now: time.Now, f: f, size: st.Size()}, nil
}

// Close closes the file.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Writer returns an io.WriteCloser for one stream ("stdout" or
// "stderr"). Close flushes a last partial line.
func (l *LogFile) Writer(stream string) io.WriteCloser {
	return &streamWriter{l: l, stream: stream}
}

func (l *LogFile) writeEntry(stream string, line []byte) error {
	b, err := json.Marshal(LogEntry{Log: string(line), Stream: stream, Time: l.now().UTC()})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(b)) > l.opts.MaxSize {
		if err := l.rotateLocked(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	return err
}

// rotateLocked shifts path.N-1 → path.N ... path → path.1 and opens a new
// path. Needs l.mu held.
func (l *LogFile) rotateLocked() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	if l.opts.MaxFiles == 1 {
		if err := os.Truncate(l.path, 0); err != nil {
			return err
		}
	} else {
		os.Remove(fmt.Sprintf("%s.%d", l.path, l.opts.MaxFiles-1))
		for i := l.opts.MaxFiles - 2; i >= 1; i-- {
			if err := os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	return nil
}

type streamWriter struct {
	l      *LogFile
	stream string
	buf    []byte // a partial line
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLogLine {
				if err := w.l.writeEntry(w.stream, w.buf[:maxLogLine]); err != nil {
					return 0, err
				}
				w.buf = append(w.buf[:0], w.buf[maxLogLine:]...)
			}
			break
		}
		line := p[:i+1]
		if len(w.buf) > 0 {
			line = append(w.buf, line...)
			w.buf = w.buf[:0]
		}
		for len(line) > maxLogLine {
			if err := w.l.writeEntry(w.stream, line[:maxLogLine]); err != nil {
				return 0, err
			}
			line = line[maxLogLine:]
		}
		if err := w.l.writeEntry(w.stream, line); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *streamWriter) Close() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.l.writeEntry(w.stream, w.buf)
	w.buf = nil
	return err
}

// ReadLogs returns the entries of the log at path and its rotated files,
// oldest first, at or after since (zero: all), the last tail of them
// (negative: all).
func ReadLogs(path string, since time.Time, tail int) ([]LogEntry, error) {
	files, err := logFiles(path)
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	for _, f := range files {
		es, err := readLogFile(f, since)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return selectLogs(out, time.Time{}, tail), nil
}

// selectLogs keeps of ents (oldest first) those at or after since (zero:
// all), then the last tail of them (negative: all), as ReadLogs does.
func selectLogs(ents []LogEntry, since time.Time, tail int) []LogEntry {
	if !since.IsZero() {
		kept := ents[:0:0]
		for _, e := range ents {
			if !e.Time.Before(since) {
				kept = append(kept, e)
			}
		}
		ents = kept
	}
	if tail >= 0 && len(ents) > tail {
		ents = ents[len(ents)-tail:]
	}
	return ents
}

// logFiles lists path's rotated files oldest first, then path itself.
func logFiles(path string) ([]string, error) {
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		return nil, err
	}
	type rotated struct {
		n    int
		name string
	}
	var rs []rotated
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, path+"."))
		if err == nil && n > 0 {
			rs = append(rs, rotated{n, m})
		}
	}
	// Higher numbers are older.
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].n > rs[j-1].n; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	var files []string
	for _, r := range rs {
		files = append(files, r.name)
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	return files, nil
}

func readLogFile(name string, since time.Time) ([]LogEntry, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // rotated away while we listed
		}
		return nil, err
	}
	defer f.Close()
	var out []LogEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // a line cut short by a crash
		}
		if !since.IsZero() && e.Time.Before(since) {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
