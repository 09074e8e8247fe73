package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

func TestLogFileLinesAndStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	lf, err := OpenLogFile(path, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	lf.now = func() time.Time { now = now.Add(time.Second); return now }
	out, errw := lf.Writer("stdout"), lf.Writer("stderr")
	fmt.Fprint(out, "hel")
	fmt.Fprint(out, "lo\nwor")
	fmt.Fprint(errw, "oops\n")
	fmt.Fprint(out, "ld\n")
	fmt.Fprint(out, "partial")
	out.Close()
	errw.Close()
	lf.Close()

	es, err := ReadLogs(path, time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Stream+":"+e.Log)
	}
	want := []string{"stdout:hello\n", "stderr:oops\n", "stdout:world\n", "stdout:partial"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("entries = %q, want %q", got, want)
	}
	if tail, _ := ReadLogs(path, time.Time{}, 2); len(tail) != 2 || tail[1].Log != "partial" {
		t.Fatalf("tail 2 = %+v", tail)
	}
	since, _ := ReadLogs(path, es[2].Time, -1)
	if len(since) != 2 || since[0].Log != "world\n" {
		t.Fatalf("since = %+v", since)
	}
}

func TestLogFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	lf, err := OpenLogFile(path, LogOptions{MaxSize: 1000, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	w := lf.Writer("stdout")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(w, "line %03d\n", i)
	}
	lf.Close()
	for _, f := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("missing %s: %v", f, err)
		}
		if st.Size() > 1000 {
			t.Fatalf("%s is %d bytes, over max-size", f, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("more files kept than max-file")
	}
	es, err := ReadLogs(path, time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if es[len(es)-1].Log != "line 199\n" {
		t.Fatalf("last entry %q", es[len(es)-1].Log)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Log <= es[i-1].Log {
			t.Fatalf("entries out of order at %d: %q after %q", i, es[i].Log, es[i-1].Log)
		}
	}
}

func TestLogFileLongLineSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	lf, _ := OpenLogFile(path, LogOptions{})
	w := lf.Writer("stdout")
	fmt.Fprint(w, strings.Repeat("a", 40000)+"\n")
	lf.Close()
	es, _ := ReadLogs(path, time.Time{}, -1)
	total := 0
	for _, e := range es {
		if len(e.Log) > maxLogLine {
			t.Fatalf("entry of %d bytes", len(e.Log))
		}
		total += len(e.Log)
	}
	if len(es) != 3 || total != 40001 {
		t.Fatalf("%d entries, %d bytes", len(es), total)
	}
}

func TestParseLogOptions(t *testing.T) {
	o, err := ParseLogOptions(&spec.Logging{Driver: "json-file", Options: map[string]string{"max-size": "5m", "max-file": "2"}})
	if err != nil || o.MaxSize != 5<<20 || o.MaxFiles != 2 {
		t.Fatalf("got %+v, %v", o, err)
	}
	if o, _ := ParseLogOptions(nil); o.MaxSize != defaultLogMaxSize || o.MaxFiles != defaultLogMaxFiles {
		t.Fatalf("defaults %+v", o)
	}
	for _, bad := range []map[string]string{{"max-size": "lots"}, {"max-file": "0"}} {
		if _, err := ParseLogOptions(&spec.Logging{Options: bad}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := ParseLogOptions(&spec.Logging{Driver: "syslog"}); err == nil || !strings.Contains(err.Error(), "syslog") {
		t.Errorf("syslog driver: %v", err)
	}
}
