package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

// serve runs handler on root/berth.sock for the test's duration.
func serve(t *testing.T, root string, h http.Handler) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(root, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func TestDialNoDaemon(t *testing.T) {
	_, err := Dial(t.TempDir())
	if !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial on an empty root: %v, want ErrNoDaemon", err)
	}
}

func TestStreamRoundTrip(t *testing.T) {
	root := t.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Info{Version: "test", Pid: 42, Root: root})
	})
	mux.HandleFunc("POST /v1/up", func(w http.ResponseWriter, r *http.Request) {
		var req UpRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(ErrorBody{Error: err.Error(), Kind: KindBadRequest})
			return
		}
		s := NewStreamWriter(w)
		for _, svc := range req.Project.Services {
			s.Event(Event{Service: svc.Name, Action: "create", Status: "done"})
		}
		s.Result(Result{Errors: []string{"a failed", "b failed"}})
	})
	mux.HandleFunc("POST /v1/containers/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		json.NewEncoder(w).Encode(ErrorBody{Error: "no such container " + r.PathValue("name"), Kind: KindNotFound})
	})
	serve(t, root, mux)

	c, err := Dial(root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := &spec.Project{Name: "demo", Services: []spec.Service{{Name: "a"}, {Name: "b"}}}
	var got []string
	res, err := c.Up(context.Background(), UpRequest{Project: p}, func(e Event) { got = append(got, e.Service+":"+e.Action) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a:create" || got[1] != "b:create" {
		t.Errorf("events %v", got)
	}
	if res.Err() == nil || res.Err().Error() != "a failed\nb failed" {
		t.Errorf("result error %v", res.Err())
	}
	_, err = c.Container(context.Background(), "x-y-1", ActionStop, ContainerRequest{})
	if !errors.Is(err, ErrNotFound) || err.Error() != "no such container x-y-1" {
		t.Errorf("container action: %v", err)
	}
}

func TestStreamWithoutResult(t *testing.T) {
	root := t.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/down", func(w http.ResponseWriter, r *http.Request) {
		s := NewStreamWriter(w)
		s.Event(Event{Time: time.Now(), Action: "stop"})
	})
	serve(t, root, mux)
	c := New(root)
	_, err := c.Down(context.Background(), DownRequest{ProjectName: "x"}, nil)
	if err == nil {
		t.Fatal("a stream cut before its result must be an error")
	}
}

func TestLogsFollowEndsWithContext(t *testing.T) {
	root := t.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("project") != "demo" || q["service"][0] != "web" || q.Get("tail") != "-1" || q.Get("follow") != "1" {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(ErrorBody{Error: "bad query " + r.URL.RawQuery, Kind: KindBadRequest})
			return
		}
		s := NewStreamWriter(w)
		s.Log(LogLine{Container: "demo-web-1", Log: "one"})
		s.Log(LogLine{Container: "demo-web-1", Log: "two"})
		<-r.Context().Done()
	})
	serve(t, root, mux)
	c := New(root)
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	err := c.Logs(ctx, LogsRequest{Project: "demo", Services: []string{"web"}, Follow: true, Tail: -1}, func(l LogLine) error {
		got = append(got, l.Log)
		if len(got) == 2 {
			cancel()
		}
		return nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("logs -f: %v %v", got, err)
	}
}

func TestErrorKinds(t *testing.T) {
	e := errorFromBody(409, ErrorBody{Error: "container is running", Kind: KindConflict})
	if !errors.Is(e, ErrConflict) || errors.Is(e, ErrNotFound) {
		t.Errorf("kind matching: %v", e)
	}
	if e := errorFromBody(500, ErrorBody{}); e.Error() == "" || !strings.Contains(e.Error(), "500") {
		t.Errorf("empty body: %q", e)
	}
	if KindOf(fmt.Errorf("x: %w", ErrBadRequest)) != KindBadRequest || StatusFor(KindNotFound) != 404 {
		t.Error("KindOf/StatusFor")
	}
}
