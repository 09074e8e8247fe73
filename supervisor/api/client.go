package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Client talks to the daemon of one berth root. It is safe for concurrent
// use; streaming calls hold one connection each until they return.
type Client struct {
	root string
	sock string
	http *http.Client
}

// New returns a client for the daemon of root without contacting it.
func New(root string) *Client {
	sock := filepath.Join(root, SocketName)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{root: root, sock: sock, http: &http.Client{Transport: tr}}
}

// Dial returns a client for the daemon of root once it answers a ping.
// When nothing listens on the socket the error wraps ErrNoDaemon.
func Dial(root string) (*Client, error) {
	c := New(root)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Root is the berth root the client talks to.
func (c *Client) Root() string { return c.root }

// Close drops idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Ping asks the daemon who it is.
func (c *Client) Ping(ctx context.Context) (Info, error) {
	var info Info
	err := c.do(ctx, http.MethodGet, "/v1/ping", nil, nil, &info)
	return info, err
}

// Up applies a project. onEvent (may be nil) receives progress as it
// happens. The error is a transport or request error; a failed up returns
// a Result whose Errors say what failed (Result.Err).
func (c *Client) Up(ctx context.Context, req UpRequest, onEvent func(Event)) (*Result, error) {
	return c.stream(ctx, http.MethodPost, "/v1/up", nil, req, onEvent, nil)
}

// Down stops and removes a project (see DownRequest).
func (c *Client) Down(ctx context.Context, req DownRequest, onEvent func(Event)) (*Result, error) {
	return c.stream(ctx, http.MethodPost, "/v1/down", nil, req, onEvent, nil)
}

// Run runs a one-off container; onLog receives its output unless
// req.Detach. The Result carries the exit code. A request that is
// Attached goes through RunAttached, its files closed unused.
func (c *Client) Run(ctx context.Context, req RunRequest, onEvent func(Event), onLog func(LogLine)) (*Result, error) {
	if req.Attached() {
		return c.RunAttached(ctx, req, onEvent, onLog, nil)
	}
	return c.stream(ctx, http.MethodPost, "/v1/run", nil, req, onEvent, onLog)
}

// RunAttached runs a one-off container whose request is Attached (TTY or
// Interactive): onAttach receives the files the daemon passes, the pty
// master or the stdin pipe, and owns them (nil: they are closed). It is
// called from the goroutine reading the stream, before the container
// starts: it must return promptly. The request has a connection of its
// own; ctx ending closes it, which the daemon takes as the client
// leaving (it stops the container). A stream that ends without a Result
// returns an error wrapping ErrNoResult: the container may still run.
func (c *Client) RunAttached(ctx context.Context, req RunRequest, onEvent func(Event), onLog func(LogLine), onAttach func(Attach, *os.File)) (*Result, error) {
	const path = "/v1/run"
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", path, err)
	}
	conn, err := dialFiles(ctx, c.sock)
	if err != nil {
		if isNoDaemon(err) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNoDaemon, c.sock)
		}
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	hreq, err := http.NewRequest(http.MethodPost, "http://berth"+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	rc := resultCollector{onEvent: onEvent, onLog: onLog, onAttach: func(a Attach) error {
		f := conn.takeFile()
		if f == nil {
			return fmt.Errorf("%s: attach message (%s) without a file", path, a.Kind)
		}
		if onAttach == nil {
			f.Close()
		} else {
			onAttach(a, f)
		}
		return nil
	}}
	err = hreq.Write(conn)
	if err == nil {
		var resp *http.Response
		if resp, err = http.ReadResponse(bufio.NewReader(conn), hreq); err == nil {
			if err = checkStatus(resp); err == nil {
				err = ReadStream(resp.Body, rc.handle)
				resp.Body.Close()
			}
		}
	}
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return rc.finish(c, path, err)
}

// Ps lists the containers of project ("" for every project): running ones
// only unless all.
func (c *Client) Ps(ctx context.Context, project string, all bool) ([]ContainerSummary, error) {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	if all {
		q.Set("all", "1")
	}
	var out []ContainerSummary
	err := c.do(ctx, http.MethodGet, "/v1/ps", q, nil, &out)
	return out, err
}

// Projects lists the projects (`ls`): those with running containers unless
// all.
func (c *Client) Projects(ctx context.Context, all bool) ([]ProjectSummary, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	var out []ProjectSummary
	err := c.do(ctx, http.MethodGet, "/v1/projects", q, nil, &out)
	return out, err
}

// Project returns the project as the last up applied it (ErrNotFound when
// the daemon has none of that name).
func (c *Client) Project(ctx context.Context, name string) (*ProjectInfo, error) {
	var out ProjectInfo
	if err := c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ProjectAction starts, stops or restarts (ActionStart, ActionStop,
// ActionRestart) the containers of a project in dependency order.
func (c *Client) ProjectAction(ctx context.Context, name, action string, req ProjectRequest, onEvent func(Event)) (*Result, error) {
	p := "/v1/projects/" + url.PathEscape(name) + "/" + url.PathEscape(action)
	return c.stream(ctx, http.MethodPost, p, nil, req, onEvent, nil)
}

// Container runs action (ActionStart, ActionStop, ...) on the container
// name and returns it as it is afterwards.
func (c *Client) Container(ctx context.Context, name, action string, req ContainerRequest) (ContainerSummary, error) {
	var out ContainerResponse
	p := "/v1/containers/" + url.PathEscape(name) + "/" + url.PathEscape(action)
	err := c.do(ctx, http.MethodPost, p, nil, req, &out)
	return out.Container, err
}

// Logs streams log lines to fn until they are all sent (or, with Follow,
// until ctx ends: then it returns nil). An error from fn stops the stream
// and is returned.
func (c *Client) Logs(ctx context.Context, req LogsRequest, fn func(LogLine) error) error {
	q := url.Values{}
	if req.Project != "" {
		q.Set("project", req.Project)
	}
	for _, s := range req.Services {
		q.Add("service", s)
	}
	for _, s := range req.Containers {
		q.Add("container", s)
	}
	if req.Follow {
		q.Set("follow", "1")
	}
	q.Set("tail", strconv.Itoa(req.Tail))
	if !req.Since.IsZero() {
		q.Set("since", req.Since.Format(time.RFC3339Nano))
	}
	err := c.rawStream(ctx, http.MethodGet, "/v1/logs", q, nil, func(m Message) error {
		if m.Log != nil {
			return fn(*m.Log)
		}
		if m.Event != nil && m.Event.Action == EventLogsCaughtUp && req.CaughtUp != nil {
			req.CaughtUp()
		}
		return nil
	})
	if req.Follow && ctx.Err() != nil {
		return nil
	}
	return err
}

// Events streams events of project ("" for all) to fn until ctx ends
// (then it returns nil) or fn returns an error.
func (c *Client) Events(ctx context.Context, project string, fn func(Event) error) error {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	err := c.rawStream(ctx, http.MethodGet, "/v1/events", q, nil, func(m Message) error {
		if m.Event != nil {
			return fn(*m.Event)
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Client) stream(ctx context.Context, method, path string, q url.Values, body any, onEvent func(Event), onLog func(LogLine)) (*Result, error) {
	rc := resultCollector{onEvent: onEvent, onLog: onLog}
	err := c.rawStream(ctx, method, path, q, body, rc.handle)
	return rc.finish(c, path, err)
}

// resultCollector dispatches the messages of an up, down or run stream
// and keeps its Result.
type resultCollector struct {
	onEvent func(Event)
	onLog   func(LogLine)
	// onAttach handles Attach messages; nil: they are an error.
	onAttach func(Attach) error
	res      *Result
}

func (rc *resultCollector) handle(m Message) error {
	switch {
	case m.Event != nil:
		if rc.onEvent != nil {
			rc.onEvent(*m.Event)
		}
	case m.Log != nil:
		if rc.onLog != nil {
			rc.onLog(*m.Log)
		}
	case m.Result != nil:
		rc.res = m.Result
	case m.Attach != nil:
		if rc.onAttach == nil {
			return errors.New("unexpected attach message from the daemon")
		}
		return rc.onAttach(*m.Attach)
	}
	return nil
}

// finish returns the Result, or why there is none.
func (rc *resultCollector) finish(c *Client, path string, err error) (*Result, error) {
	if err != nil {
		return rc.res, err
	}
	if rc.res == nil {
		return nil, fmt.Errorf("%s: %w (did it exit? see %s)", path, ErrNoResult, filepath.Join(c.root, "daemon.log"))
	}
	return rc.res, nil
}

func (c *Client) rawStream(ctx context.Context, method, path string, q url.Values, body any, fn func(Message) error) error {
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := ReadStream(resp.Body, fn); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: bad answer from daemon: %w", path, err)
	}
	return nil
}

// send makes the request and returns a 2xx response; anything else becomes
// an error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := "http://berth" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if isNoDaemon(err) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNoDaemon, c.sock)
		}
		return nil, err
	}
	if err := checkStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// checkStatus turns a non-2xx response into an error (closing its body).
func checkStatus(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	defer resp.Body.Close()
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &eb) != nil {
		eb.Error = string(bytes.TrimSpace(b))
	}
	return errorFromBody(resp.StatusCode, eb)
}

// isNoDaemon tells a socket nobody listens on (or that does not exist)
// from other failures.
func isNoDaemon(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
