package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

// attachServer answers POST /v1/run like the daemon's attached run: an
// event, the write end of a pipe as AttachStdin, then (once the client
// closed that end) a Result whose exit code is the number of bytes read.
// gone receives whether the client's end of the connection closed.
func attachServer(t *testing.T, gone chan<- bool) string {
	t.Helper()
	root := t.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		var req RunRequest
		if err := decodeJSON(r, &req); err != nil || !req.Attached() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s, clientGone, conn, err := Hijack(w)
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Error(err)
			return
		}
		defer pr.Close()
		s.Event(Event{Action: "create", Status: "done", Container: "c1"})
		err = s.SendFile(Message{Attach: &Attach{Kind: AttachStdin, Container: "c1"}}, pw)
		pw.Close()
		if err != nil {
			t.Errorf("SendFile: %v", err)
			return
		}
		if req.Service == "hang" {
			select {
			case <-clientGone:
				gone <- true
			case <-time.After(5 * time.Second):
				gone <- false
			}
			return
		}
		b, _ := io.ReadAll(pr)
		s.Result(Result{ExitCode: len(b), Containers: []string{string(b)}})
	})
	serve(t, root, mux)
	return root
}

func decodeJSON(r *http.Request, v any) error {
	return jsonDecode(r.Body, v)
}

func TestRunAttachedPassesFile(t *testing.T) {
	root := attachServer(t, nil)
	c := New(root)
	defer c.Close()
	var events []string
	var got Attach
	req := RunRequest{Project: &spec.Project{Name: "p"}, Service: "s", Interactive: true}
	res, err := c.RunAttached(context.Background(), req, func(e Event) { events = append(events, e.Action) }, nil,
		func(a Attach, f *os.File) {
			got = a
			io.WriteString(f, "hello")
			f.Close() // end of file for the reader
		})
	if err != nil {
		t.Fatalf("RunAttached: %v", err)
	}
	if got.Kind != AttachStdin || got.Container != "c1" {
		t.Errorf("attach = %+v", got)
	}
	if len(events) != 1 || events[0] != "create" {
		t.Errorf("events = %v", events)
	}
	if res.ExitCode != 5 || len(res.Containers) != 1 || res.Containers[0] != "hello" {
		t.Errorf("result = %+v, want the 5 bytes written to the passed pipe", res)
	}
}

// Run on an attached request closes the files it gets: the server reads
// end of file at once.
func TestRunClosesUnwantedFiles(t *testing.T) {
	root := attachServer(t, nil)
	c := New(root)
	defer c.Close()
	res, err := c.Run(context.Background(), RunRequest{Project: &spec.Project{Name: "p"}, Service: "s", Interactive: true}, nil, nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

// Cancelling the context closes the connection, and the server sees the
// client go.
func TestRunAttachedCancelIsSeen(t *testing.T) {
	gone := make(chan bool, 1)
	root := attachServer(t, gone)
	c := New(root)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var f *os.File
	_, err := c.RunAttached(ctx, RunRequest{Project: &spec.Project{Name: "p"}, Service: "hang", TTY: true}, nil, nil,
		func(_ Attach, file *os.File) { f = file; cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RunAttached after cancel: %v, want context.Canceled", err)
	}
	if f != nil {
		f.Close()
	}
	if !<-gone {
		t.Error("the server did not see the client go")
	}
}

// A stream that ends without a Result is ErrNoResult.
func TestRunAttachedNoResult(t *testing.T) {
	root := t.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		_, _, conn, err := Hijack(w)
		if err == nil {
			conn.Close()
		}
	})
	serve(t, root, mux)
	c := New(root)
	defer c.Close()
	_, err := c.RunAttached(context.Background(), RunRequest{Project: &spec.Project{Name: "p"}, Service: "s", TTY: true}, nil, nil, nil)
	if !errors.Is(err, ErrNoResult) {
		t.Errorf("err = %v, want ErrNoResult", err)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
