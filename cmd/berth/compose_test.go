package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// fixedNow pins the formatters' clock.
func fixedNow(t *testing.T, at time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func sampleContainers() []api.ContainerSummary {
	return []api.ContainerSummary{
		{ID: "b2", Name: "demo-web-1", Project: "demo", Service: "web", Number: 1, Image: "busybox:latest",
			Command: "httpd -f -v -p 8080 -h /srv", State: "running", Health: "healthy",
			Publishers: []api.Publisher{{URL: "127.0.0.1", TargetPort: 8080, PublishedPort: 8080, Protocol: "tcp"}},
			CreatedAt:  t0.Add(-3 * time.Minute), StartedAt: t0.Add(-2 * time.Minute)},
		{ID: "a1", Name: "demo-api-1", Project: "demo", Service: "api", Number: 1, Image: "busybox:latest",
			Command: "sh -c exit 3", State: "exited", ExitCode: 3, RestartCount: 2,
			CreatedAt: t0.Add(-time.Hour), StartedAt: t0.Add(-50 * time.Minute), FinishedAt: t0.Add(-10 * time.Second)},
	}
}

func TestPsTable(t *testing.T) {
	fixedNow(t, t0)
	cs := sampleContainers()
	sortContainers(cs)
	var b bytes.Buffer
	if err := writePsTable(&b, cs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows, got:\n%s", b.String())
	}
	for _, col := range []string{"NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %s", lines[0], col)
		}
	}
	// Sorted by service: api before web.
	for _, want := range []string{"demo-api-1", `"sh -c exit 3"`, "About an hour ago", "Exited (3) 10 seconds ago"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("api row %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"demo-web-1", `"httpd -f -v -p 8080…"`, "3 minutes ago", "Up 2 minutes (healthy)", "127.0.0.1:8080->8080/tcp"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("web row %q lacks %q", lines[2], want)
		}
	}
	// Columns line up: STATUS starts at the same offset on every line.
	col := func(line, s string) int { return utf8.RuneCountInString(line[:strings.Index(line, s)]) }
	off := col(lines[0], "STATUS")
	if col(lines[1], "Exited") != off || col(lines[2], "Up 2") != off {
		t.Errorf("STATUS column not aligned:\n%s", b.String())
	}
}

func TestStatusText(t *testing.T) {
	fixedNow(t, t0)
	for _, tc := range []struct {
		c    api.ContainerSummary
		want string
	}{
		{api.ContainerSummary{State: "running", StartedAt: t0.Add(-5 * time.Second)}, "Up 5 seconds"},
		{api.ContainerSummary{State: "running", Health: "starting", StartedAt: t0.Add(-time.Second)}, "Up 1 second (starting)"},
		{api.ContainerSummary{State: "paused", StartedAt: t0.Add(-2 * time.Hour)}, "Up 2 hours (Paused)"},
		{api.ContainerSummary{State: "restarting", ExitCode: 1, FinishedAt: t0.Add(-3 * time.Second)}, "Restarting (1) 3 seconds ago"},
		{api.ContainerSummary{State: "exited", ExitCode: 137}, "Exited (137)"},
		{api.ContainerSummary{State: "created"}, "Created"},
		{api.ContainerSummary{State: "dead"}, "Dead"},
	} {
		if got := statusText(tc.c); got != tc.want {
			t.Errorf("statusText(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestPsCommandJSON(t *testing.T) {
	fixedNow(t, t0)
	d := newFakeDaemon(t)
	for _, c := range sampleContainers() {
		d.containers[c.Name] = &c
	}
	other := api.ContainerSummary{Name: "other-web-1", Project: "other", Service: "web", State: "running"}
	d.containers[other.Name] = &other

	out, _, err := d.run("ps", "-p", "demo", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("ps without -a shows running containers only, one JSON object per line; got:\n%s", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	for _, k := range []string{"Name", "Service", "Project", "State", "Health", "ExitCode", "RestartCount", "Publishers", "CreatedAt", "StartedAt", "Status", "Ports"} {
		if _, ok := m[k]; !ok {
			t.Errorf("ps json lacks %s: %s", k, lines[0])
		}
	}
	if m["Name"] != "demo-web-1" || m["State"] != "running" || m["Health"] != "healthy" || m["Status"] != "Up 2 minutes (healthy)" {
		t.Errorf("ps json = %s", lines[0])
	}
	pubs, _ := m["Publishers"].([]any)
	if len(pubs) != 1 || pubs[0].(map[string]any)["PublishedPort"] != float64(8080) {
		t.Errorf("Publishers = %v", m["Publishers"])
	}

	out, _, err = d.run("ps", "-p", "demo", "--format", "json", "-a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var c api.ContainerSummary
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.Name)
		if c.Name == "demo-api-1" && (c.State != "exited" || c.ExitCode != 3 || c.RestartCount != 2) {
			t.Errorf("api container: %+v", c)
		}
	}
	if !slices.Equal(names, []string{"demo-api-1", "demo-web-1"}) {
		t.Errorf("ps -a names = %v", names)
	}

	out, _, err = d.run("ps", "-p", "demo", "--status", "exited", "-q")
	if err != nil || out != "a1\n" {
		t.Errorf("ps --status exited -q = %q, %v", out, err)
	}
	out, _, err = d.run("ps", "-p", "demo", "-a", "--services")
	if err != nil || out != "api\nweb\n" {
		t.Errorf("ps --services = %q, %v", out, err)
	}
	if _, _, err := d.run("ps", "-p", "demo", "--status", "sleeping"); err == nil || !strings.Contains(err.Error(), `unknown state "sleeping"`) {
		t.Errorf("bad --status: %v", err)
	}
	if _, _, err := d.run("ps", "-p", "demo", "--format", "yaml"); err == nil || !strings.Contains(err.Error(), `unknown format "yaml"`) {
		t.Errorf("bad --format: %v", err)
	}
}

func TestColorStablePerName(t *testing.T) {
	seen := map[string]bool{}
	for i := range 40 {
		name := "demo-svc" + string(rune('a'+i%26)) + "-1"
		c := colorFor(name)
		if c != colorFor(name) {
			t.Fatalf("colour of %s changes between calls", name)
		}
		if !slices.Contains(prefixColors, c) {
			t.Fatalf("colour %q not in the palette", c)
		}
		seen[c] = true
	}
	if len(seen) < 4 {
		t.Errorf("40 names got only %d colours: the hash does not spread", len(seen))
	}
	// Known values keep a name's colour across berth versions.
	if colorFor("web-1") != colorFor("web-1") || colorFor("web-1") == "" {
		t.Fatal("no colour")
	}
}

func TestLogPrinter(t *testing.T) {
	var b bytes.Buffer
	lp := newLogPrinter(&b, false, []string{"web-1", "db-1"})
	lp.Line("web-1", t0, "hello")
	lp.Line("db-1", t0, "ready")
	lp.Note("db-1", "exited with code 0")
	want := "web-1  | hello\ndb-1   | ready\ndb-1 exited with code 0\n"
	if b.String() != want {
		t.Errorf("plain prefixes:\n%q\nwant\n%q", b.String(), want)
	}

	b.Reset()
	lp = newLogPrinter(&b, true, []string{"web-1"})
	lp.Line("web-1", t0, "hi")
	want = "\x1b[" + colorFor("web-1") + "mweb-1  | \x1b[0mhi\n"
	if b.String() != want {
		t.Errorf("coloured prefix %q, want %q", b.String(), want)
	}

	b.Reset()
	lp = newLogPrinter(&b, false, nil)
	lp.noPrefix, lp.timestamps = true, true
	lp.Line("web-1", t0, "x")
	if b.String() != "2026-11-29T12:00:00Z x\n" {
		t.Errorf("--no-log-prefix -t: %q", b.String())
	}
}

func TestShortName(t *testing.T) {
	for _, tc := range [][4]string{
		{"demo", "web", "demo-web-1", "web-1"},
		{"demo", "web", "custom-name", "custom-name"},
		{"demo", "web", "demo-web-run-ab12", "web-run-ab12"},
	} {
		if got := shortName(tc[0], tc[1], tc[2]); got != tc[3] {
			t.Errorf("shortName(%q) = %q, want %q", tc[2], got, tc[3])
		}
	}
}

func TestLogsCommand(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, demoYAML)
	d.containers["demo-web-1"] = &api.ContainerSummary{Name: "demo-web-1", Project: "demo", Service: "web", Number: 1, State: "running"}
	d.containers["demo-db-1"] = &api.ContainerSummary{Name: "demo-db-1", Project: "demo", Service: "db", Number: 1, State: "exited"}
	for i, l := range []string{"one", "two", "three"} {
		d.addLog("demo-web-1", "web", l, t0.Add(time.Duration(i)*time.Second))
	}
	d.addLog("demo-db-1", "db", "db ready", t0)

	out, _, err := d.run("logs", "--project-directory", dir, "--file", filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := "web-1  | one\nweb-1  | two\nweb-1  | three\ndb-1   | db ready\n"
	if out != want {
		t.Errorf("logs:\n%s\nwant\n%s", out, want)
	}
	out, _, err = d.run("logs", "-p", "demo", "--tail", "1", "--no-log-prefix", "web")
	if err != nil || out != "three\n" {
		t.Errorf("logs --tail 1 --no-log-prefix web = %q, %v", out, err)
	}
	out, _, err = d.run("logs", "-p", "demo", "-t", "--since", "2026-11-29T12:00:01Z", "web")
	if err != nil || out != "web-1  | 2026-11-29T12:00:01Z two\nweb-1  | 2026-11-29T12:00:02Z three\n" {
		t.Errorf("logs -t --since = %q, %v", out, err)
	}
	if _, _, err := d.run("logs", "-p", "demo", "--tail", "x"); err == nil || !strings.Contains(err.Error(), `--tail: "x"`) {
		t.Errorf("bad --tail: %v", err)
	}
	if _, _, err := d.run("logs", "-p", "demo", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad --since: %v", err)
	}
	if _, _, err := d.run("logs", "--file", filepath.Join(dir, "compose.yaml"), "nosuch"); err == nil || !strings.Contains(err.Error(), `no such service: "nosuch"`) {
		t.Errorf("unknown service: %v", err)
	}
}

func TestParseTimeArg(t *testing.T) {
	fixedNow(t, t0)
	for in, want := range map[string]time.Time{
		"10m":                  t0.Add(-10 * time.Minute),
		"2026-11-29T11:00:00Z": t0.Add(-time.Hour),
		"1700000000":           time.Unix(1700000000, 0),
	} {
		got, err := parseTimeArg(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeArg(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseTimeArg("-5m"); err == nil {
		t.Error("negative duration accepted")
	}
}

func TestUpFlagValidation(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, demoYAML)
	f := filepath.Join(dir, "compose.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scale", "web=x"}, `--scale web=x: "x" is not a number`},
		{[]string{"--scale", "web"}, "--scale web: want SERVICE=NUMBER"},
		{[]string{"--scale", "web=-1"}, "cannot be negative"},
		{[]string{"--scale", "nosuch=2"}, `--scale nosuch: no such service: "nosuch"`},
		{[]string{"--force-recreate", "--no-recreate"}, "--force-recreate and --no-recreate are incompatible"},
		{[]string{"-d", "--abort-on-container-exit"}, "--abort-on-container-exit and --detach"},
		{[]string{"--wait", "--exit-code-from", "web"}, "--exit-code-from and --detach"},
		{[]string{"--exit-code-from", "nosuch"}, `--exit-code-from: no such service: "nosuch"`},
		{[]string{"--pull", "sometimes"}, `--pull: unknown policy "sometimes"`},
		{[]string{"--no-start", "--wait"}, "--no-start and --wait are incompatible"},
		{[]string{"-d", "nosuch"}, `no such service: "nosuch"`},
	} {
		_, _, err := d.run(append([]string{"up", "-f", f}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("up %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	if len(d.ups) != 0 {
		t.Errorf("invalid flags still reached the daemon: %d up requests", len(d.ups))
	}
}

func TestUpDetachedPlainProgress(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, demoYAML)
	_, errOut, err := d.run("up", "-d", "-f", filepath.Join(dir, "compose.yaml"), "--scale", "web=2", "--pull", "never", "--wait", "--wait-timeout", "30")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ups) != 1 {
		t.Fatalf("%d up requests", len(d.ups))
	}
	req := d.ups[0]
	if req.Project.Name != "demo" || len(req.Project.Services) != 3 {
		t.Errorf("up sent project %q with %d services", req.Project.Name, len(req.Project.Services))
	}
	o := req.Options
	if !o.Detach || !o.Wait || o.WaitTimeout != 30*time.Second || o.Pull != "never" || o.Scale["web"] != 2 {
		t.Errorf("up options %+v", o)
	}
	for _, want := range []string{
		"Container demo-web-1 Creating\nContainer demo-web-1 Created\nContainer demo-web-1 Starting\nContainer demo-web-1 Started\n",
		"Container demo-web-2 Started\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "\x1b[") {
		t.Errorf("escape sequences on a non-terminal: %q", errOut)
	}
}

func TestUpReportsDaemonErrors(t *testing.T) {
	d := newFakeDaemon(t)
	d.upResult = api.Result{Errors: []string{`service "api": image "nope" not found`, `service "db": port 80 in use`}}
	dir := stackDir(t, demoYAML)
	_, _, err := d.run("up", "-d", "-f", filepath.Join(dir, "compose.yaml"))
	if err == nil || !strings.Contains(err.Error(), `service "api": image "nope" not found`) || !strings.Contains(err.Error(), `service "db": port 80 in use`) {
		t.Fatalf("up error %v: want both errors", err)
	}
}

func TestTTYProgress(t *testing.T) {
	var b bytes.Buffer
	p := newTTYProgress(&b, "Running")
	p.Event(api.Event{Container: "demo-web-1", Action: "start", Status: "working"})
	p.Event(api.Event{Container: "demo-db-1", Action: "start", Status: "done"})
	p.Event(api.Event{Container: "demo-web-1", Action: "start", Status: "done"})
	p.Event(api.Event{Container: "demo-api-1", Action: "create", Status: "error", Error: "boom"})
	p.Done()
	out := b.String()
	// The last drawing starts at the last cursor-up over its 4 lines.
	i := strings.LastIndex(out, "\x1b[4A")
	if i < 0 {
		t.Fatalf("no redraw in %q", out)
	}
	last := out[i:]
	for _, want := range []string{"[+] Running 3/3", "✔\x1b[0m Container demo-web-1  Started", "✔\x1b[0m Container demo-db-1   Started", "✘\x1b[0m Container demo-api-1  Error boom"} {
		if !strings.Contains(last, want) {
			t.Errorf("final drawing lacks %q:\n%q", want, last)
		}
	}
}

func TestDownWithoutStackFile(t *testing.T) {
	d := newFakeDaemon(t)
	d.containers["demo-web-1"] = &api.ContainerSummary{Name: "demo-web-1", Project: "demo", Service: "web", State: "running"}
	empty := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(empty); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })

	if _, _, err := d.run("down"); err == nil || !strings.Contains(err.Error(), "no stack file found") {
		t.Errorf("down without -p or files: %v", err)
	}
	_, errOut, err := d.run("down", "-p", "demo", "-v", "-t", "3", "--rmi", "local")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.downs) != 1 {
		t.Fatalf("%d down requests", len(d.downs))
	}
	r := d.downs[0]
	if r.ProjectName != "demo" || r.Project != nil || !r.Volumes || r.Timeout == nil || *r.Timeout != 3*time.Second || r.RMI != "local" {
		t.Errorf("down request %+v", r)
	}
	if !strings.Contains(errOut, "Container demo-web-1 Removed") {
		t.Errorf("down progress: %q", errOut)
	}
	if _, _, err := d.run("down", "-p", "demo", "--rmi", "some"); err == nil || !strings.Contains(err.Error(), `--rmi: unknown value "some"`) {
		t.Errorf("bad --rmi: %v", err)
	}
}

// waitFor polls cond (the fake daemon's state) for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUpAttachedExitCodeFrom(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, demoYAML)
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, err := d.run("up", "-f", filepath.Join(dir, "compose.yaml"), "--exit-code-from", "api")
		done <- result{out, errOut, err}
	}()
	// up subscribes to events, then the containers start; once they run,
	// they print and api exits with 3.
	waitFor(t, "the containers", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.containers) == 3 })
	waitFor(t, "the event subscription", func() bool { return d.subscribers() == 1 })
	time.Sleep(100 * time.Millisecond) // let up attach (ps) before the exit
	d.addLog("demo-api-1", "api", "api says hi", time.Now())
	d.addLog("demo-web-1", "web", "web says hi", time.Now())
	d.emit(api.Event{Container: "demo-api-1", Service: "api", Action: "die", Status: "exited", ExitCode: 3})

	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("up did not return after the exit")
	}
	var ee *exitError
	if !errors.As(r.err, &ee) || ee.code != 3 {
		t.Fatalf("up --exit-code-from api: err %v, want exit code 3\nstdout:\n%s\nstderr:\n%s", r.err, r.out, r.errOut)
	}
	for _, want := range []string{"Attaching to api-1, db-1, web-1", "api-1  | api says hi\n", "web-1  | web says hi\n", "api-1 exited with code 3"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.out)
		}
	}
	if !strings.Contains(r.errOut, "Aborting on container exit...") {
		t.Errorf("stderr lacks the abort note:\n%s", r.errOut)
	}
	d.mu.Lock()
	acts := slices.Clone(d.projActs)
	d.mu.Unlock()
	if len(acts) != 1 || acts[0].Project != "demo" || acts[0].Action != "stop" || len(acts[0].Req.Services) != 0 {
		t.Errorf("on abort up asked %+v, want one stop of the whole project", acts)
	}
	for _, want := range []string{"web-1 exited with code 137", "db-1 exited with code 137"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("stdout lacks %q (exits after the stop are noted):\n%s", want, r.out)
		}
	}
}

// A container that exits before up attaches (its die event came before
// the subscription) still aborts the stack and sets the exit code.
func TestUpAttachedAbortOnQuickExit(t *testing.T) {
	for _, tc := range []struct {
		flag string
		want int
	}{{"--exit-code-from=api", 3}, {"--abort-on-container-exit", 3}} {
		d := newFakeDaemon(t)
		d.upExited = map[string]int{"api": 3}
		dir := stackDir(t, demoYAML)
		d.addLog("demo-api-1", "api", "api was quick", time.Now().Add(time.Second))
		type result struct {
			out, errOut string
			err         error
		}
		done := make(chan result, 1)
		go func() {
			out, errOut, err := d.run("up", "-f", filepath.Join(dir, "compose.yaml"), tc.flag)
			done <- result{out, errOut, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: up did not return: the exit before attaching went unnoticed", tc.flag)
		}
		var ee *exitError
		if !errors.As(r.err, &ee) || ee.code != tc.want {
			t.Fatalf("%s: err %v, want exit code %d\nstdout:\n%s\nstderr:\n%s", tc.flag, r.err, tc.want, r.out, r.errOut)
		}
		for _, want := range []string{"api-1  | api was quick\n", "api-1 exited with code 3", "web-1 exited with code 137"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", tc.flag, want, r.out)
			}
		}
		if !strings.Contains(r.errOut, "Aborting on container exit...") {
			t.Errorf("%s: stderr lacks the abort note:\n%s", tc.flag, r.errOut)
		}
	}
}

func TestUpAttachedEndsWhenAllExit(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, `name: one
services:
  job:
    image: busybox:latest
    command: ["echo", "done"]
`)
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, _, err = d.run("up", "-f", filepath.Join(dir, "compose.yaml"))
		done <- err
	}()
	waitFor(t, "the container", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.containers) == 1 })
	waitFor(t, "the event subscription", func() bool { return d.subscribers() == 1 })
	time.Sleep(100 * time.Millisecond)
	d.addLog("one-job-1", "job", "done", time.Now())
	// A restart keeps up attached; the final exit ends it.
	d.emit(api.Event{Container: "one-job-1", Service: "job", Action: "die", Status: "restarting", ExitCode: 1})
	d.emit(api.Event{Container: "one-job-1", Service: "job", Action: "start", Status: "running"})
	select {
	case err := <-done:
		t.Fatalf("up returned after a restart: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	d.emit(api.Event{Container: "one-job-1", Service: "job", Action: "die", Status: "exited", ExitCode: 0})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("up did not return after the last exit")
	}
	for _, want := range []string{"job-1  | done\n", "job-1 exited with code 1\n", "job-1 exited with code 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestLifecycleCommands(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, demoYAML)
	f := filepath.Join(dir, "compose.yaml")
	if _, _, err := d.run("up", "-d", "-f", f); err != nil {
		t.Fatal(err)
	}
	var order []string
	d.onAction = func(name, action string) { order = append(order, action+" "+name) }

	// stop, start and restart go to the daemon as project actions, which
	// walk the dependency graph.
	_, errOut, err := d.run("stop", "-f", f, "-t", "2", "api", "db")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.projActs) != 1 || d.projActs[0].Action != "stop" || !slices.Equal(d.projActs[0].Req.Services, []string{"api", "db"}) ||
		d.projActs[0].Req.Timeout == nil || *d.projActs[0].Req.Timeout != 2*time.Second {
		t.Errorf("stop asked %+v", d.projActs)
	}
	if !strings.Contains(errOut, "Container demo-api-1 Stopped") || !strings.Contains(errOut, "Container demo-db-1 Stopped") {
		t.Errorf("stop progress %q", errOut)
	}
	if _, _, err := d.run("start", "-p", "demo"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.run("restart", "-p", "demo", "web"); err != nil {
		t.Fatal(err)
	}
	if len(d.projActs) != 3 || d.projActs[1].Action != "start" || d.projActs[1].Req.Services != nil || d.projActs[1].Req.Timeout != nil ||
		d.projActs[2].Action != "restart" || !slices.Equal(d.projActs[2].Req.Services, []string{"web"}) {
		t.Errorf("start/restart asked %+v", d.projActs[1:])
	}
	if len(order) != 0 {
		t.Errorf("project actions went container by container: %v", order)
	}
	order = nil
	if _, _, err := d.run("kill", "-p", "demo", "-s", "TERM", "web"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"kill demo-web-1"}) || !slices.Contains(d.actions, "kill TERM demo-web-1") {
		t.Errorf("kill: %v / %v", order, d.actions)
	}
	if _, _, err := d.run("kill", "-p", "demo", "-s", "NOPE"); err == nil || !strings.Contains(err.Error(), `unknown signal "NOPE"`) {
		t.Errorf("bad signal: %v", err)
	}
	// rm asks first; "n" keeps the container.
	order = nil
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader("n\n"))
	cmd.SetArgs([]string{"--root", d.root, "rm", "-p", "demo"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if len(order) != 0 || !strings.Contains(errb.String(), "Going to remove demo-web-1") {
		t.Errorf("rm without -f: actions %v, stderr %q", order, errb.String())
	}
	if _, _, err := d.run("rm", "-p", "demo", "-f", "-s", "-v"); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	left := len(d.containers)
	d.mu.Unlock()
	if left != 0 {
		t.Errorf("rm -f -s left %d containers (actions %v)", left, order)
	}
	if _, _, err := d.run("stop", "-p", "demo", "web"); err == nil || !strings.Contains(err.Error(), `service "web" has no containers`) {
		t.Errorf("stop of a service without containers: %v", err)
	}
}

func TestPortCommand(t *testing.T) {
	d := newFakeDaemon(t)
	for _, c := range sampleContainers() {
		d.containers[c.Name] = &c
	}
	out, _, err := d.run("port", "-p", "demo", "web", "8080")
	if err != nil || out != "127.0.0.1:8080\n" {
		t.Errorf("port web 8080 = %q, %v", out, err)
	}
	if _, _, err := d.run("port", "-p", "demo", "web", "8080", "--protocol", "udp"); err == nil || !strings.Contains(err.Error(), "container demo-web-1: port 8080/udp is not published") {
		t.Errorf("udp: %v", err)
	}
	if _, _, err := d.run("port", "-p", "demo", "web", "8080", "--index", "2"); err == nil || !strings.Contains(err.Error(), `service "web" has no container with index 2`) {
		t.Errorf("--index 2: %v", err)
	}
	if _, _, err := d.run("port", "-p", "demo", "web", "http"); err == nil || !strings.Contains(err.Error(), `invalid port "http"`) {
		t.Errorf("bad port: %v", err)
	}
}

func TestLsCommand(t *testing.T) {
	d := newFakeDaemon(t)
	for _, c := range sampleContainers() {
		d.containers[c.Name] = &c
	}
	out, _, err := d.run("ls")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "demo") || !strings.Contains(out, "running(1), exited(1)") || !strings.Contains(out, "/srv/demo/compose.yaml") {
		t.Errorf("ls:\n%s", out)
	}
	out, _, err = d.run("ls", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ps []lsJSON
	if err := json.Unmarshal([]byte(out), &ps); err != nil || len(ps) != 1 || ps[0].Name != "demo" || ps[0].ConfigFiles != "/srv/demo/compose.yaml" {
		t.Errorf("ls json %q: %v", out, err)
	}
}

func TestEventsFormat(t *testing.T) {
	ev := api.Event{Time: t0, Project: "demo", Service: "web", Container: "demo-web-1", Action: "die", Status: "exited", ExitCode: 2}
	var b bytes.Buffer
	if err := writeEvent(&b, ev, true); err != nil {
		t.Fatal(err)
	}
	var m eventJSON
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m.Action != "die" || m.ID != "demo-web-1" || m.Service != "web" || m.Type != "container" || m.Attributes["exitCode"] != "2" {
		t.Errorf("events --json: %s (%v)", b.String(), err)
	}
	b.Reset()
	writeEvent(&b, ev, false)
	if !strings.Contains(b.String(), " container die demo-web-1 (service=web, exitCode=2, project=demo, status=exited)") {
		t.Errorf("events: %q", b.String())
	}
}

func TestStatsRow(t *testing.T) {
	prev := statSample{Name: "demo-web-1", At: t0, Cg: statsCg(1e9, 0)}
	cur := statSample{Name: "demo-web-1", At: t0.Add(time.Second), Cg: statsCg(1.5e9, 64<<20), NetRx: 1500, NetTx: 2_000_000, HostMem: 8 << 30}
	r := statsRowOf(prev, cur)
	if r.CPUPerc != "50.00%" || r.MemUsage != "8MiB / 64MiB" || r.MemPerc != "12.50%" || r.NetIO != "1.5kB / 2MB" || r.PIDs != "3" {
		t.Errorf("stats row %+v", r)
	}
	// Without a limit the host's memory is the limit.
	cur.Cg.MemoryLimit = 1 << 62
	if r := statsRowOf(prev, cur); r.MemUsage != "8MiB / 8GiB" {
		t.Errorf("unlimited: %+v", r)
	}
}

func TestTopFromProc(t *testing.T) {
	fixedNow(t, t0)
	old := userName
	userName = func(uid int) string {
		if uid == 0 {
			return "root"
		}
		return "nobody"
	}
	t.Cleanup(func() { userName = old })
	proc := t.TempDir()
	boot := t0.Add(-time.Hour)
	mk := func(pid int, stat, status, cmdline string) {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644)
		os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644)
	}
	// Started 30 min after boot (180000 ticks), 6000 ticks of CPU (60 s).
	mk(4242, "4242 (httpd (x)) S 4200 4242 4242 34816 4242 0 0 0 0 0 5000 1000 0 0 20 0 1 0 180000 0 0", "Name:\thttpd\nUid:\t65534\t65534\t65534\t65534\n", "httpd\x00-f\x00-p\x008080\x00")
	mk(4300, "4300 (kworker) S 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 360000 0 0", "Uid:\t0\t0\t0\t0\n", "")
	var procs []procInfo
	for _, pid := range []int{4300, 4242} {
		pi, err := readProc(proc, pid, boot)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, pi)
	}
	if procs[1].PPID != 4200 || procs[1].TTY != "pts/0" || procs[1].Cmd != "httpd -f -p 8080" || procs[1].UID != 65534 {
		t.Errorf("httpd: %+v", procs[1])
	}
	var b bytes.Buffer
	if err := writeTop(&b, procs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "UID") {
		t.Fatalf("top:\n%s", b.String())
	}
	if f := strings.Fields(lines[1]); !slices.Equal(f, []string{"nobody", "4242", "4200", "3", boot.Add(30 * time.Minute).Local().Format("15:04"), "pts/0", "00:01:00", "httpd", "-f", "-p", "8080"}) {
		t.Errorf("httpd row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 8 || f[0] != "root" || f[7] != "[kworker]" || f[5] != "?" {
		t.Errorf("kworker row %q", lines[2])
	}
	// The real /proc/self parses too.
	bt, err := bootTime("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self, err := readProc("/proc", os.Getpid(), bt)
	if err != nil || self.PPID != os.Getppid() || !strings.Contains(self.Cmd, filepath.Base(os.Args[0])) {
		t.Errorf("/proc/self: %+v %v", self, err)
	}
}

func TestPublisherText(t *testing.T) {
	got := portsText([]api.Publisher{
		{URL: "0.0.0.0", TargetPort: 80, PublishedPort: 8080, Protocol: "tcp"},
		{URL: "::1", TargetPort: 53, PublishedPort: 5353, Protocol: "udp"},
	})
	if got != "0.0.0.0:8080->80/tcp, [::1]:5353->53/udp" {
		t.Errorf("ports %q", got)
	}
}

func TestEnvArgs(t *testing.T) {
	t.Setenv("BERTH_TEST_X", "from-host")
	got, err := envArgs([]string{"A=1", "BERTH_TEST_X", "BERTH_TEST_UNSET_Y"})
	if err != nil || !slices.Equal(got, []string{"A=1", "BERTH_TEST_X=from-host"}) {
		t.Errorf("envArgs = %v, %v", got, err)
	}
	if _, err := envArgs([]string{"=x"}); err == nil {
		t.Error("empty key accepted")
	}
	if got := setEnv([]string{"PATH=/bin", "A=0"}, []string{"A=1", "B=2"}); !slices.Equal(got, []string{"PATH=/bin", "A=1", "B=2"}) {
		t.Errorf("setEnv = %v", got)
	}
}

func statsCg(cpuNanos uint64, limit uint64) cgroups.Stats {
	return cgroups.Stats{CPUUsageNanos: cpuNanos, MemoryUsage: 10 << 20, MemoryCache: 2 << 20, MemoryLimit: limit, Pids: 3}
}

func TestResolveProject(t *testing.T) {
	empty := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(empty); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })
	t.Setenv("COMPOSE_FILE", "")
	t.Setenv("COMPOSE_PROJECT_NAME", "")
	ctx := t.Context()

	po := projectOptions{ProjectName: "My.Proj_1"}
	st, err := po.resolve(ctx, nil)
	if err != nil || st.Name != "myproj_1" || st.Project != nil {
		t.Errorf("-p without files: %+v, %v", st, err)
	}
	po = projectOptions{ProjectName: "!!!"}
	if _, err := po.resolve(ctx, nil); err == nil || !strings.Contains(err.Error(), `invalid project name "!!!"`) {
		t.Errorf("bad -p: %v", err)
	}
	t.Setenv("COMPOSE_PROJECT_NAME", "fromenv")
	po = projectOptions{}
	if st, err := po.resolve(ctx, nil); err != nil || st.Name != "fromenv" {
		t.Errorf("COMPOSE_PROJECT_NAME without files: %+v, %v", st, err)
	}
	t.Setenv("COMPOSE_PROJECT_NAME", "")
	if _, err := po.resolve(ctx, nil); err == nil || !strings.Contains(err.Error(), "no stack file found") {
		t.Errorf("no name and no files: %v", err)
	}

	// With a stack file in a parent directory, -p renames the loaded project.
	dir := stackDir(t, demoYAML)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.Chdir(sub)
	po = projectOptions{ProjectName: "other"}
	st, err = po.resolve(ctx, nil)
	if err != nil || st.Name != "other" || st.Project == nil || len(st.Project.Services) != 3 {
		t.Errorf("-p with files: %+v, %v", st, err)
	}
	if err := st.checkServices([]string{"web", "x", "y"}); err == nil || err.Error() != `no such services: "x", "y"` {
		t.Errorf("checkServices: %v", err)
	}
}

func TestRunCommand(t *testing.T) {
	d := newFakeDaemon(t)
	dir := stackDir(t, demoYAML)
	f := filepath.Join(dir, "compose.yaml")
	out, errOut, err := d.run("run", "-f", f, "--rm", "-e", "A=1", "--no-deps", "-u", "nobody", "web", "sh", "-c", "echo x; exit 4")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 4 {
		t.Fatalf("run: %v, want exit code 4", err)
	}
	if out != "sh -c echo x; exit 4\n" || !strings.Contains(errOut, "to stderr\n") {
		t.Errorf("run output %q / %q: stdout and stderr unprefixed, each on its stream", out, errOut)
	}
	r := d.runs[0]
	if r.Service != "web" || !r.Remove || !r.NoDeps || r.User != "nobody" || !slices.Equal(r.Env, []string{"A=1"}) || r.Project.Name != "demo" || r.Entrypoint != nil {
		t.Errorf("run request %+v", r)
	}
	// Our stdin goes to the container through the pipe the daemon
	// passes (not without -i).
	if !r.Interactive || r.TTY || r.Detach {
		t.Errorf("run without a terminal: request %+v, want Interactive and no TTY", r)
	}
	out, _, err = runBerth(t, "a\nb\n", "--root", d.root, "run", "-f", f, "-T", "web", "cat")
	if err != nil || out != "stdin: a|b|\ncat\n" {
		t.Errorf("run -T with stdin: %q, %v", out, err)
	}
	out, _, err = runBerth(t, "a\n", "--root", d.root, "run", "-f", f, "-i=false", "web", "cat")
	if err != nil || out != "cat\n" || d.runs[len(d.runs)-1].Attached() {
		t.Errorf("run -i=false with stdin: %q, %v; request %+v", out, err, d.runs[len(d.runs)-1])
	}
	out, _, err = d.run("run", "-f", f, "-d", "--entrypoint", "/bin/echo", "db")
	last := d.runs[len(d.runs)-1]
	if err != nil || out != "demo-db-run-0a1b\n" || !slices.Equal(last.Entrypoint, []string{"/bin/echo"}) || last.Attached() {
		t.Errorf("run -d: %q, %v, request %+v", out, err, last)
	}
	if _, _, err := d.run("run", "-f", f, "-d", "--rm", "db"); err == nil || !strings.Contains(err.Error(), "--rm and --detach are incompatible") {
		t.Errorf("run -d --rm: %v", err)
	}
	if _, _, err := d.run("run", "-f", f, "nosuch"); err == nil || !strings.Contains(err.Error(), `no such service: "nosuch"`) {
		t.Errorf("run of an unknown service: %v", err)
	}
}

func TestWaitCommand(t *testing.T) {
	d := newFakeDaemon(t)
	for _, c := range sampleContainers() {
		d.containers[c.Name] = &c
	}
	out, _, err := d.run("wait", "-p", "demo", "api")
	var ee *exitError
	if out != "3\n" || !errors.As(err, &ee) || ee.code != 3 {
		t.Errorf("wait api: %q, %v; want 3 and exit code 3", out, err)
	}
	d.containers["demo-web-1"].ExitCode = 0
	if out, _, err := d.run("wait", "-p", "demo", "--down-project", "web"); out != "0\n" || err != nil || len(d.downs) != 1 {
		t.Errorf("wait --down-project web: %q, %v, %d downs", out, err, len(d.downs))
	}
	if _, _, err := d.run("wait", "-p", "demo"); err == nil {
		t.Error("wait without a service accepted")
	}
}

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		ev             api.Event
		subject, words string
		done, failed   bool
		ok             bool
	}{
		{api.Event{Container: "demo-web-1", Action: "create", Status: "working"}, "Container demo-web-1", "Creating", false, false, true},
		{api.Event{Container: "demo-web-1", Action: "remove", Status: "done"}, "Container demo-web-1", "Removed", true, false, true},
		{api.Event{Container: "demo-web-1", Action: "start", Status: "error", Error: "port 80 in use"}, "Container demo-web-1", "Error port 80 in use", true, true, true},
		{api.Event{Container: "demo-db-1", Action: "health_status", Status: "healthy"}, "Container demo-db-1", "Healthy", true, false, true},
		{api.Event{Container: "demo-db-1", Action: "health_status", Status: "starting"}, "Container demo-db-1", "Starting", false, false, true},
		{api.Event{Project: "demo", Action: "network", Status: "done", Message: "demo_default"}, "Network demo_default", "Created", true, false, true},
		{api.Event{Project: "demo", Action: "network", Status: "removed", Message: "demo_default"}, "Network demo_default", "Removed", true, false, true},
		{api.Event{Project: "demo", Action: "volume", Status: "removed", Message: "demo_data"}, "Volume demo_data", "Removed", true, false, true},
		{api.Event{Project: "demo", Service: "web", Action: "pull", Status: "working", Message: "busybox:latest"}, "Image busybox:latest", "Pulling", false, false, true},
		{api.Event{Project: "demo", Action: "warning", Message: "orphans"}, "", "", false, false, false},
		{api.Event{Container: "demo-web-1", Action: "die", Status: "exited"}, "", "", false, false, false},
	} {
		subject, words, done, failed, ok := progressLine(tc.ev)
		if subject != tc.subject || words != tc.words || done != tc.done || failed != tc.failed || ok != tc.ok {
			t.Errorf("progressLine(%+v) = %q %q %v %v %v, want %q %q %v %v %v", tc.ev, subject, words, done, failed, ok,
				tc.subject, tc.words, tc.done, tc.failed, tc.ok)
		}
	}
}

func TestDialRetriesResets(t *testing.T) {
	var rl *resettingListener
	d := newFakeDaemonOn(t, func(l net.Listener) net.Listener {
		rl = &resettingListener{Listener: l, n: 3}
		return rl
	})
	out, _, err := d.run("ls", "-q")
	if err != nil || out != "" {
		t.Fatalf("ls against a daemon that resets its first connections: %q, %v", out, err)
	}
	rl.mu.Lock()
	left := rl.n
	rl.mu.Unlock()
	if left != 0 {
		t.Errorf("%d resets not reached: the test did not exercise the retry", left)
	}
}

func TestLogsFollowEndsWhenContainersStop(t *testing.T) {
	d := newFakeDaemon(t)
	d.containers["demo-web-1"] = &api.ContainerSummary{Name: "demo-web-1", Project: "demo", Service: "web", Number: 1, State: "running"}
	d.containers["demo-db-1"] = &api.ContainerSummary{Name: "demo-db-1", Project: "demo", Service: "db", Number: 1, State: "exited"}
	d.addLog("demo-db-1", "db", "old line", t0)

	// Nothing running: -f prints what there is and returns.
	out, _, err := d.run("logs", "-f", "-p", "demo", "db")
	if err != nil || out != "db-1  | old line\n" {
		t.Fatalf("logs -f of a stopped container: %q, %v", out, err)
	}

	done := make(chan string, 1)
	go func() {
		out, _, _ := d.run("logs", "-f", "-p", "demo", "web")
		done <- out
	}()
	waitFor(t, "the event subscription", func() bool { return d.subscribers() == 1 })
	d.addLog("demo-web-1", "web", "last words", time.Now())
	// A restart keeps -f going.
	d.emit(api.Event{Container: "demo-web-1", Service: "web", Action: "die", Status: "restarting", ExitCode: 1})
	d.mu.Lock()
	d.containers["demo-web-1"].State = "restarting"
	d.mu.Unlock()
	select {
	case out := <-done:
		t.Fatalf("logs -f ended on a restart: %q", out)
	case <-time.After(300 * time.Millisecond):
	}
	d.emit(api.Event{Container: "demo-web-1", Service: "web", Action: "die", Status: "exited", ExitCode: 0})
	select {
	case out := <-done:
		if out != "web-1  | last words\n" {
			t.Errorf("logs -f output %q", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logs -f did not end when its container stopped")
	}
}
