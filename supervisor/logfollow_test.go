package supervisor

import (
	"bufio"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
)

// A line written after `logs -f` read a log's lines but before it began
// following that log is sent, once: the follower starts where the log
// ended before the read, not where it ends when the follower starts.
func TestLogFollowerMissesNoLine(t *testing.T) {
	i := &Instance{name: "p-web-1", dir: t.TempDir(), st: containerState{Service: &spec.Service{Name: "web"}}}
	lf, err := OpenLogFile(i.LogPath(), LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	out := lf.Writer("stdout")
	write := func(s string) {
		if _, err := out.Write([]byte(s + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	write("before")
	read, err := ReadLogs(i.LogPath(), time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	end := markAfter(read)
	write("between") // after the read, before the follower starts
	rec := httptest.NewRecorder()
	f := newLogFollower(i, api.NewStreamWriter(rec), end, nil)
	if !f.pump() {
		t.Fatal("pump failed")
	}
	write("after")
	if !f.pump() {
		t.Fatal("pump failed")
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	for sc.Scan() {
		var m struct {
			Log *api.LogLine `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if m.Log != nil {
			got = append(got, m.Log.Log)
		}
	}
	if strings.Join(got, ",") != "between,after" {
		t.Fatalf("sent %q, want between and after, once each", got)
	}
}
