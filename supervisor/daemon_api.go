package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/supervisor/api"
	"golang.org/x/sys/unix"
)

// Handler returns the daemon's HTTP API (see package api).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", d.handlePing)
	mux.HandleFunc("POST /v1/up", d.handleUp)
	mux.HandleFunc("POST /v1/down", d.handleDown)
	mux.HandleFunc("POST /v1/run", d.handleRun)
	mux.HandleFunc("GET /v1/ps", d.handlePs)
	mux.HandleFunc("GET /v1/projects", d.handleProjects)
	mux.HandleFunc("GET /v1/projects/{name}", d.handleProject)
	mux.HandleFunc("POST /v1/projects/{name}/{action}", d.handleProjectAction)
	mux.HandleFunc("POST /v1/containers/{name}/{action}", d.handleContainer)
	mux.HandleFunc("GET /v1/logs", d.handleLogs)
	mux.HandleFunc("GET /v1/events", d.handleEvents)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err with the status of its kind.
func writeError(w http.ResponseWriter, err error) {
	kind := api.KindOf(apiErr(err))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(api.StatusFor(kind))
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: err.Error(), Kind: kind})
}

// apiErr maps engine errors onto the api's sentinels.
func apiErr(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errors.Join(err, api.ErrNotFound)
	case errors.Is(err, ErrIsRunning), errors.Is(err, ErrNotRunning), errors.Is(err, ErrExist):
		return errors.Join(err, api.ErrConflict)
	}
	return err
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{api.ErrBadRequest}, args...)...)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<20))
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

func (d *Daemon) handlePing(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, api.Info{Version: d.cfg.Version, Pid: os.Getpid(), Root: d.cfg.Root, StartedAt: d.started})
}

// summary converts a snapshot for the wire.
func summary(c ContainerInfo) api.ContainerSummary {
	s := api.ContainerSummary{
		ID: c.ID, Name: c.Name, Project: c.Project, Service: c.Service, Number: c.Number,
		Image: c.Image, Command: strings.Join(c.Command, " "), State: c.State, Health: c.Health,
		ExitCode: c.ExitCode, OOMKilled: c.OOMKilled, Error: c.Error, RestartCount: c.RestartCount,
		CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, Pid: c.Pid,
		StoppedByUser: c.StoppedByUser, Publishers: []api.Publisher{},
	}
	for _, p := range c.Publishers {
		url := "0.0.0.0"
		if p.HostIP.IsValid() {
			url = p.HostIP.String()
		}
		s.Publishers = append(s.Publishers, api.Publisher{URL: url, TargetPort: int(p.ContainerPort),
			PublishedPort: int(p.HostPort), Protocol: p.Protocol})
	}
	for _, n := range c.Networks {
		s.Networks = append(s.Networks, n.Network)
	}
	return s
}

func isActive(state string) bool {
	return state == StateRunning || state == StateRestarting || state == StatePaused
}

func (d *Daemon) handlePs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	all := q.Get("all") == "1" || q.Get("all") == "true"
	out := []api.ContainerSummary{}
	for _, i := range d.engine.Instances(q.Get("project")) {
		c := i.Snapshot()
		if all || isActive(c.State) {
			out = append(out, summary(c))
		}
	}
	writeJSON(w, out)
}

func (d *Daemon) handleProjects(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "1" || r.URL.Query().Get("all") == "true"
	byName := map[string]*api.ProjectSummary{}
	get := func(name string) *api.ProjectSummary {
		p := byName[name]
		if p == nil {
			p = &api.ProjectSummary{Name: name, Containers: map[string]int{}}
			byName[name] = p
		}
		return p
	}
	for _, name := range d.projects.names() {
		st, err := d.projects.load(name)
		if err != nil || st == nil || st.Project == nil {
			continue
		}
		p := get(name)
		p.ConfigFiles = st.Project.ComposeFiles
		p.WorkingDir = st.Project.WorkingDir
	}
	for _, i := range d.engine.Instances("") {
		c := i.Snapshot()
		get(c.Project).Containers[c.State]++
	}
	out := []api.ProjectSummary{}
	for _, p := range byName {
		if !all && p.Containers[StateRunning]+p.Containers[StateRestarting]+p.Containers[StatePaused] == 0 {
			continue
		}
		p.Status = projectStatus(p.Containers)
		out = append(out, *p)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	writeJSON(w, out)
}

// projectStatus prints container counts as Compose's ls does:
// "exited(1), running(2)", states sorted by name.
func projectStatus(counts map[string]int) string {
	states := make([]string, 0, len(counts))
	for s, n := range counts {
		if n > 0 {
			states = append(states, s)
		}
	}
	sort.Strings(states)
	parts := make([]string, len(states))
	for k, s := range states {
		parts[k] = fmt.Sprintf("%s(%d)", s, counts[s])
	}
	return strings.Join(parts, ", ")
}

func (d *Daemon) handleContainer(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var req api.ContainerRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	c, err := d.containerAction(r.Context(), name, action, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, api.ContainerResponse{Container: c})
}

func timeoutOr(t *time.Duration) time.Duration {
	if t == nil {
		return -1
	}
	return *t
}

func (d *Daemon) containerAction(ctx context.Context, name, action string, req api.ContainerRequest) (api.ContainerSummary, error) {
	i, ok := d.engine.Instance(name)
	if !ok {
		return api.ContainerSummary{}, fmt.Errorf("%w: %s", api.ErrNotFound, "no such container: "+name)
	}
	var err error
	switch action {
	case api.ActionStart:
		err = i.Start(ctx)
		d.markStopped(i.Project(), name, false)
	case api.ActionStop:
		d.markStopped(i.Project(), name, true)
		err = i.Stop(ctx, timeoutOr(req.Timeout))
	case api.ActionRestart:
		err = i.Restart(ctx, timeoutOr(req.Timeout))
		d.markStopped(i.Project(), name, false)
	case api.ActionKill:
		sig := unix.SIGKILL
		if req.Signal != "" {
			if sig, err = parseSignal(req.Signal); err != nil {
				return api.ContainerSummary{}, badRequest("%v", err)
			}
		}
		err = i.Kill(sig)
		if err == nil && (sig == unix.SIGKILL || sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT) {
			d.markStopped(i.Project(), name, true)
		}
	case api.ActionPause:
		err = i.Pause()
	case api.ActionUnpause:
		err = i.Unpause()
	case api.ActionRemove:
		err = i.Remove(ctx, RemoveOptions{Volumes: req.Volumes, Force: req.Force})
		if err == nil {
			_ = d.projects.update(i.Project(), false, func(st *projectState) {
				delete(st.Stopped, name)
				delete(st.OneOff, name)
			})
			return api.ContainerSummary{}, nil
		}
	case api.ActionWait:
		cond := req.Condition
		if cond == "" {
			cond = StateExited
		}
		err = i.WaitCondition(ctx, cond)
		if errors.Is(err, ErrConditionFailed) && cond == StateExited {
			err = nil
		}
	default:
		return api.ContainerSummary{}, badRequest("unknown container action %q", action)
	}
	if err != nil {
		return api.ContainerSummary{}, apiErr(fmt.Errorf("%s %s: %w", action, name, err))
	}
	return summary(i.Snapshot()), nil
}

// markStopped records (or clears) "stopped by the user" for boot restore.
func (d *Daemon) markStopped(project, name string, stopped bool) {
	err := d.projects.update(project, false, func(st *projectState) {
		if stopped {
			if st.Stopped == nil {
				st.Stopped = map[string]bool{}
			}
			st.Stopped[name] = true
		} else {
			delete(st.Stopped, name)
		}
	})
	if err != nil {
		d.log.Warn("saving project state", "project", project, "err", err)
	}
}

func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch, unsub := d.bus.subscribe(r.URL.Query().Get("project"))
	defer unsub()
	s := api.NewStreamWriter(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-ch:
			if s.Event(e) != nil {
				return
			}
		}
	}
}

// logSel picks the containers a logs request reads.
type logSel struct {
	project    string
	services   map[string]bool
	containers map[string]bool
}

func (s logSel) match(project, service, name string) bool {
	if s.project != "" && project != s.project {
		return false
	}
	if len(s.services) > 0 && !s.services[service] {
		return false
	}
	if len(s.containers) > 0 && !s.containers[name] {
		return false
	}
	return true
}

func setOf(v []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sel := logSel{project: q.Get("project"), services: setOf(q["service"]), containers: setOf(q["container"])}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	tail := -1
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, badRequest("tail %q: not a number", t))
			return
		}
		tail = n
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, badRequest("since %q: %v", s, err))
			return
		}
		since = t
	}
	var insts []*Instance
	for _, i := range d.engine.Instances(sel.project) {
		if sel.match(i.Project(), i.ServiceName(), i.Name()) {
			insts = append(insts, i)
		}
	}
	if len(sel.containers) > 0 && len(insts) == 0 && !follow {
		writeError(w, fmt.Errorf("%w: no such container", api.ErrNotFound))
		return
	}
	// Subscribe before reading, so that no container started meanwhile
	// is missed when following.
	var events <-chan api.Event
	if follow {
		ch, unsub := d.bus.subscribe(sel.project)
		defer unsub()
		events = ch
	}
	// Following, each log is read whole once: the lines to send come
	// from that read, and its follower goes on from where that read
	// ended, so that a line written meanwhile is neither lost nor sent
	// twice.
	ends := map[string]logMark{}
	s := api.NewStreamWriter(w)
	var lines []api.LogLine
	for _, i := range insts {
		var ents []LogEntry
		var err error
		if follow {
			ents, err = ReadLogs(i.LogPath(), time.Time{}, -1)
			ends[i.Name()] = markAfter(ents)
			ents = selectLogs(ents, since, tail)
		} else {
			ents, err = ReadLogs(i.LogPath(), since, tail)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		for _, e := range ents {
			lines = append(lines, logLine(i, e))
		}
	}
	sort.SliceStable(lines, func(a, b int) bool { return lines[a].Time.Before(lines[b].Time) })
	for _, l := range lines {
		if s.Log(l) != nil {
			return
		}
	}
	if !follow {
		return
	}
	if s.Event(api.Event{Time: time.Now().UTC(), Project: sel.project, Action: api.EventLogsCaughtUp}) != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	following := map[string]context.CancelFunc{}
	startFollow := func(i *Instance, f *logFollower) {
		fctx, fcancel := context.WithCancel(ctx)
		following[i.Name()] = fcancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(fctx)
		}()
	}
	for _, i := range insts {
		var mine []api.LogLine
		for _, l := range lines {
			if l.Container == i.Name() {
				mine = append(mine, l)
			}
		}
		startFollow(i, newLogFollower(i, s, ends[i.Name()], mine))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			if e.Container == "" || !sel.match(e.Project, e.Service, e.Container) {
				continue
			}
			switch e.Action {
			case "destroy":
				if c := following[e.Container]; c != nil {
					c()
					delete(following, e.Container)
				}
			case "create", "start", "restart":
				if _, ok := following[e.Container]; ok {
					continue
				}
				if i, ok := d.engine.Instance(e.Container); ok {
					// A container that appeared while following: all of
					// its log.
					startFollow(i, newLogFollower(i, s, logMark{}, nil))
				}
			}
		}
	}
}

func logLine(i *Instance, e LogEntry) api.LogLine {
	return api.LogLine{Container: i.Name(), Service: i.ServiceName(), Stream: e.Stream, Time: e.Time,
		Log: strings.TrimSuffix(e.Log, "\n")}
}

// logFollower sends the entries of a container's log that come after
// those already sent. Entries are told apart by time, and by how many
// entries of the last time were sent.
type logFollower struct {
	i *Instance
	s *api.StreamWriter
	logMark
}

// logMark is a place in a log: after the atLast entries at time last
// (the zero mark is the start).
type logMark struct {
	last   time.Time
	atLast int
}

// markAfter marks the place after ents, the whole of a log as read.
func markAfter(ents []LogEntry) logMark {
	var m logMark
	for _, e := range ents {
		m.saw(e.Time)
	}
	return m
}

// newLogFollower starts after from, or after sent (the last lines sent,
// in order) when there are any: they come after from.
func newLogFollower(i *Instance, s *api.StreamWriter, from logMark, sent []api.LogLine) *logFollower {
	f := &logFollower{i: i, s: s, logMark: from}
	if len(sent) > 0 {
		f.logMark = logMark{}
		for _, l := range sent {
			f.saw(l.Time)
		}
	}
	return f
}

func (f *logMark) saw(t time.Time) {
	if t.Equal(f.last) {
		f.atLast++
	} else {
		f.last, f.atLast = t, 1
	}
}

// pump sends what is new; false when the client went away.
func (f *logFollower) pump() bool {
	ents, err := ReadLogs(f.i.LogPath(), f.last, -1)
	if err != nil {
		return true
	}
	skip := 0
	for _, e := range ents {
		if e.Time.Equal(f.last) && skip < f.atLast {
			skip++
			continue
		}
		if f.s.Log(logLine(f.i, e)) != nil {
			return false
		}
		f.saw(e.Time)
		if e.Time.Equal(f.last) {
			skip = f.atLast
		}
	}
	return true
}

// run pumps on every log change until ctx ends.
func (f *logFollower) run(ctx context.Context) {
	notify, stop := f.i.FollowLogs()
	defer stop()
	if !f.pump() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-notify:
			if !f.pump() {
				return
			}
		}
	}
}
