package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/supervisor/api"
)

// fakeDaemon is a small, honest stand-in for the berth daemon: it serves
// the API endpoints the CLI uses on $ROOT/berth.sock and keeps containers
// in memory. up makes one running container per replica, containers'
// output is what the test puts in logs, and events the test sends reach
// every subscriber.
type fakeDaemon struct {
	t    *testing.T
	root string
	srv  *httptest.Server

	mu         sync.Mutex
	containers map[string]*api.ContainerSummary
	logs       []api.LogLine
	ups        []api.UpRequest
	downs      []api.DownRequest
	actions    []string // "stop demo-web-1"
	projActs   []projAct
	runs       []api.RunRequest
	subs       []chan api.Event
	// onAction, when set, runs after a container action is recorded
	// (with mu not held).
	onAction func(name, action string)
	// upResult is the Result up ends with (its Errors and Warnings).
	upResult api.Result
	// upExited: the containers of these services have exited, with this
	// code, by the time up returns (quick ones: their die events come
	// before anyone subscribes).
	upExited map[string]int
}

func newFakeDaemon(t *testing.T) *fakeDaemon { return newFakeDaemonOn(t, nil) }

// newFakeDaemonOn is newFakeDaemon with the socket's listener wrapped.
func newFakeDaemonOn(t *testing.T, wrap func(net.Listener) net.Listener) *fakeDaemon {
	t.Helper()
	root := t.TempDir()
	d := &fakeDaemon{t: t, root: root, containers: map[string]*api.ContainerSummary{}}
	l, err := net.Listen("unix", filepath.Join(root, api.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		l = wrap(l)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, api.Info{Version: "fake", Pid: os.Getpid(), Root: root})
	})
	mux.HandleFunc("POST /v1/up", d.up)
	mux.HandleFunc("POST /v1/down", d.down)
	mux.HandleFunc("GET /v1/ps", d.ps)
	mux.HandleFunc("POST /v1/containers/{name}/{action}", d.action)
	mux.HandleFunc("GET /v1/logs", d.serveLogs)
	mux.HandleFunc("GET /v1/events", d.events)
	mux.HandleFunc("GET /v1/projects", d.projects)
	mux.HandleFunc("POST /v1/run", d.runOne)
	mux.HandleFunc("POST /v1/projects/{name}/{action}", d.projectAction)
	d.srv = httptest.NewUnstartedServer(mux)
	d.srv.Listener = l
	d.srv.Start()
	t.Cleanup(func() {
		d.mu.Lock()
		for _, s := range d.subs {
			close(s)
		}
		d.subs = nil
		d.mu.Unlock()
		d.srv.CloseClientConnections()
		d.srv.Close()
	})
	// A client that finds no daemon must not start a real one.
	old := berthExecutable
	berthExecutable = func() (string, error) { return "", errors.New("test: no daemon to start") }
	t.Cleanup(func() { berthExecutable = old })
	return d
}

// run runs berth in-process against this daemon.
func (d *fakeDaemon) run(args ...string) (string, string, error) {
	d.t.Helper()
	return runBerth(d.t, "", append([]string{"--root", d.root}, args...)...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, kind, msg string) {
	w.WriteHeader(api.StatusFor(kind))
	json.NewEncoder(w).Encode(api.ErrorBody{Error: msg, Kind: kind})
}

func (d *fakeDaemon) up(w http.ResponseWriter, r *http.Request) {
	var req api.UpRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Project == nil {
		writeErr(w, api.KindBadRequest, fmt.Sprintf("bad up request: %v", err))
		return
	}
	sw := api.NewStreamWriter(w)
	d.mu.Lock()
	d.ups = append(d.ups, req)
	now := time.Now().UTC()
	var made []string
	for _, svc := range req.Project.Services {
		if len(req.Services) > 0 && !slices.Contains(req.Services, svc.Name) {
			continue
		}
		n := svc.Replicas
		if s, ok := req.Options.Scale[svc.Name]; ok {
			n = s
		}
		for i := 1; i <= n; i++ {
			name := fmt.Sprintf("%s-%s-%d", req.Project.Name, svc.Name, i)
			state := "running"
			if req.Options.NoStart {
				state = "created"
			}
			code, exited := d.upExited[svc.Name]
			if exited {
				state = "exited"
			}
			d.containers[name] = &api.ContainerSummary{ID: fmt.Sprintf("%064x", len(d.containers)+1), Name: name,
				Project: req.Project.Name, Service: svc.Name, Number: i, Image: svc.Image, Command: strings.Join(svc.Command, " "),
				State: state, ExitCode: code, CreatedAt: now, StartedAt: now}
			made = append(made, name)
		}
	}
	res := d.upResult
	d.mu.Unlock()
	for _, name := range made {
		sw.Event(api.Event{Time: now, Container: name, Action: "create", Status: "working"})
		sw.Event(api.Event{Time: now, Container: name, Action: "create", Status: "done"})
		if !req.Options.NoStart {
			sw.Event(api.Event{Time: now, Container: name, Action: "start", Status: "working"})
			sw.Event(api.Event{Time: now, Container: name, Action: "start", Status: "done"})
		}
	}
	res.Containers = made
	sw.Result(res)
}

func (d *fakeDaemon) down(w http.ResponseWriter, r *http.Request) {
	var req api.DownRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, api.KindBadRequest, err.Error())
		return
	}
	sw := api.NewStreamWriter(w)
	d.mu.Lock()
	d.downs = append(d.downs, req)
	var gone []string
	for name, c := range d.containers {
		if c.Project == req.ProjectName {
			gone = append(gone, name)
			delete(d.containers, name)
		}
	}
	d.mu.Unlock()
	slices.Sort(gone)
	for _, name := range gone {
		sw.Event(api.Event{Time: time.Now(), Container: name, Action: "stop", Status: "done"})
		sw.Event(api.Event{Time: time.Now(), Container: name, Action: "remove", Status: "done"})
	}
	sw.Result(api.Result{Containers: gone})
}

func (d *fakeDaemon) ps(w http.ResponseWriter, r *http.Request) {
	project, all := r.URL.Query().Get("project"), r.URL.Query().Get("all") == "1"
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []api.ContainerSummary{}
	for _, c := range d.containers {
		if (project == "" || c.Project == project) && (all || c.State == "running") {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b api.ContainerSummary) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, out)
}

func (d *fakeDaemon) action(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var req api.ContainerRequest
	json.NewDecoder(r.Body).Decode(&req)
	d.mu.Lock()
	c, ok := d.containers[name]
	if !ok {
		d.mu.Unlock()
		writeErr(w, api.KindNotFound, "no such container: "+name)
		return
	}
	rec := action
	if req.Signal != "" {
		rec += " " + req.Signal
	}
	d.actions = append(d.actions, rec+" "+name)
	died := false
	switch action {
	case api.ActionStop, api.ActionKill:
		if c.State == "running" {
			c.State, c.ExitCode, c.FinishedAt = "exited", 137, time.Now()
			died = true
		}
	case api.ActionStart, api.ActionRestart, api.ActionUnpause:
		c.State = "running"
	case api.ActionPause:
		c.State = "paused"
	case api.ActionRemove:
		delete(d.containers, name)
	}
	out := *c
	hook := d.onAction
	d.mu.Unlock()
	if died {
		d.emit(api.Event{Container: name, Service: out.Service, Project: out.Project, Action: "die", Status: "exited", ExitCode: 137})
	}
	if hook != nil {
		hook(name, action)
	}
	writeJSON(w, api.ContainerResponse{Container: out})
}

func (d *fakeDaemon) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tail := -1
	if s := q.Get("tail"); s != "" {
		tail, _ = strconv.Atoi(s)
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		since, _ = time.Parse(time.RFC3339Nano, s)
	}
	match := func(l api.LogLine) bool {
		return (len(q["service"]) == 0 || slices.Contains(q["service"], l.Service)) &&
			(len(q["container"]) == 0 || slices.Contains(q["container"], l.Container)) &&
			(since.IsZero() || !l.Time.Before(since))
	}
	d.mu.Lock()
	per := map[string][]api.LogLine{}
	var order []string
	for _, l := range d.logs {
		if !match(l) {
			continue
		}
		if _, ok := per[l.Container]; !ok {
			order = append(order, l.Container)
		}
		per[l.Container] = append(per[l.Container], l)
	}
	sent := len(d.logs)
	d.mu.Unlock()
	sw := api.NewStreamWriter(w)
	for _, c := range order {
		ls := per[c]
		if tail >= 0 && len(ls) > tail {
			ls = ls[len(ls)-tail:]
		}
		for _, l := range ls {
			sw.Log(l)
		}
	}
	if q.Get("follow") != "1" {
		return
	}
	// As the daemon does: mark the end of the lines already logged.
	sw.Event(api.Event{Time: time.Now().UTC(), Action: api.EventLogsCaughtUp})
	// Follow: send lines as they are added.
	for {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
		d.mu.Lock()
		more := slices.Clone(d.logs[sent:])
		sent = len(d.logs)
		d.mu.Unlock()
		for _, l := range more {
			if match(l) {
				sw.Log(l)
			}
		}
	}
}

func (d *fakeDaemon) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan api.Event, 64)
	d.mu.Lock()
	d.subs = append(d.subs, ch)
	d.mu.Unlock()
	sw := api.NewStreamWriter(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			sw.Event(ev)
		}
	}
}

// runOne runs a one-off container: its "output" is its command line
// echoed back on stdout, and its exit code the number after "exit", if
// any (sh -c 'exit 4'-like commands give 4).
func (d *fakeDaemon) runOne(w http.ResponseWriter, r *http.Request) {
	var req api.RunRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Project == nil {
		writeErr(w, api.KindBadRequest, fmt.Sprintf("bad run request: %v", err))
		return
	}
	d.mu.Lock()
	d.runs = append(d.runs, req)
	d.mu.Unlock()
	name := req.Name
	if name == "" {
		name = req.Project.Name + "-" + req.Service + "-run-0a1b"
	}
	var sw *api.StreamWriter
	var stdin []byte
	if req.Attached() && !req.TTY {
		// As the daemon: the client gets the write end of the stdin
		// pipe; here what it writes comes back as a log line.
		s, _, conn, err := api.Hijack(w)
		if err != nil {
			d.t.Errorf("run: %v", err)
			return
		}
		defer conn.Close()
		pr, pw, err := os.Pipe()
		if err != nil {
			d.t.Error(err)
			return
		}
		err = s.SendFile(api.Message{Attach: &api.Attach{Kind: api.AttachStdin, Container: name}}, pw)
		pw.Close()
		if err == nil {
			stdin, _ = io.ReadAll(pr)
		}
		pr.Close()
		sw = s
	} else {
		sw = api.NewStreamWriter(w)
	}
	sw.Event(api.Event{Time: time.Now(), Container: name, Action: "start", Status: "done"})
	if len(stdin) > 0 {
		sw.Log(api.LogLine{Container: name, Service: req.Service, Stream: "stdout", Time: time.Now(), Log: "stdin: " + strings.ReplaceAll(string(stdin), "\n", "|")})
	}
	if req.Detach {
		sw.Result(api.Result{Containers: []string{name}})
		return
	}
	cmd := strings.Join(req.Command, " ")
	sw.Log(api.LogLine{Container: name, Service: req.Service, Stream: "stdout", Time: time.Now(), Log: cmd})
	sw.Log(api.LogLine{Container: name, Service: req.Service, Stream: "stderr", Time: time.Now(), Log: "to stderr"})
	code := 0
	if _, after, ok := strings.Cut(cmd, "exit "); ok {
		code, _ = strconv.Atoi(strings.Fields(after)[0])
	}
	sw.Result(api.Result{ExitCode: code, Containers: []string{name}})
}

// projAct is a recorded project action request.
type projAct struct {
	Project, Action string
	Req             api.ProjectRequest
}

// projectAction acts on the project's containers of the requested
// services (the real daemon walks the dependency graph; the order is its
// business and tested there), streaming progress like the daemon.
func (d *fakeDaemon) projectAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var req api.ProjectRequest
	json.NewDecoder(r.Body).Decode(&req)
	d.mu.Lock()
	d.projActs = append(d.projActs, projAct{name, action, req})
	var names []string
	var res api.Result
	for _, s := range req.Services {
		found := false
		for _, c := range d.containers {
			found = found || (c.Project == name && c.Service == s)
		}
		if !found {
			res.Errors = append(res.Errors, fmt.Sprintf("service %q has no containers", s))
		}
	}
	for n, c := range d.containers {
		if c.Project == name && (len(req.Services) == 0 || slices.Contains(req.Services, c.Service)) {
			names = append(names, n)
		}
	}
	d.mu.Unlock()
	slices.Sort(names)
	sw := api.NewStreamWriter(w)
	if len(res.Errors) > 0 {
		sw.Result(res)
		return
	}
	for _, n := range names {
		d.mu.Lock()
		c := d.containers[n]
		died := action == api.ActionStop && c.State == "running"
		switch action {
		case api.ActionStop:
			if c.State == "running" {
				c.State, c.ExitCode, c.FinishedAt = "exited", 137, time.Now()
			}
		default:
			c.State = "running"
		}
		svc := c.Service
		d.mu.Unlock()
		sw.Event(api.Event{Time: time.Now(), Project: name, Service: svc, Container: n, Action: action, Status: "working"})
		if died {
			d.emit(api.Event{Container: n, Service: svc, Project: name, Action: "die", Status: "exited", ExitCode: 137})
		}
		sw.Event(api.Event{Time: time.Now(), Project: name, Service: svc, Container: n, Action: action, Status: "done"})
		res.Containers = append(res.Containers, n)
	}
	sw.Result(res)
}

// emit sends ev to every events subscriber.
func (d *fakeDaemon) emit(ev api.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if c, ok := d.containers[ev.Container]; ok && ev.Action == "die" {
		c.State, c.ExitCode, c.FinishedAt = ev.Status, ev.ExitCode, ev.Time
	}
	for _, s := range d.subs {
		s <- ev
	}
}

// subscribers is the number of open event streams.
func (d *fakeDaemon) subscribers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.subs)
}

func (d *fakeDaemon) projects(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	counts := map[string]map[string]int{}
	for _, c := range d.containers {
		if counts[c.Project] == nil {
			counts[c.Project] = map[string]int{}
		}
		counts[c.Project][c.State]++
	}
	out := []api.ProjectSummary{}
	for p, m := range counts {
		var parts []string
		for _, s := range []string{"running", "exited"} {
			if m[s] > 0 {
				parts = append(parts, fmt.Sprintf("%s(%d)", s, m[s]))
			}
		}
		out = append(out, api.ProjectSummary{Name: p, Status: strings.Join(parts, ", "), Containers: m, ConfigFiles: []string{"/srv/" + p + "/compose.yaml"}})
	}
	slices.SortFunc(out, func(a, b api.ProjectSummary) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, out)
}

// addLog appends an output line of a container.
func (d *fakeDaemon) addLog(container, service, line string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logs = append(d.logs, api.LogLine{Container: container, Service: service, Stream: "stdout", Time: t, Log: line})
}

// stackDir writes a compose.yaml into a new directory and returns it.
func stackDir(t *testing.T, yaml string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const demoYAML = `name: demo
services:
  web:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "8080"]
    ports: ["127.0.0.1:8080:8080"]
  db:
    image: busybox:latest
    command: ["sleep", "1000"]
  api:
    image: busybox:latest
    command: ["sh", "-c", "exit 3"]
    depends_on: [db]
`

// resettingListener resets its first n connections (closed with the
// request unread: the client's read fails with ECONNRESET), as a daemon
// that is starting up may.
type resettingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *resettingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		reset := l.n > 0
		if reset {
			l.n--
		}
		l.mu.Unlock()
		if !reset {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond) // the request is in the socket
		c.Close()
	}
}
