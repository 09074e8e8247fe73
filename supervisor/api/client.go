package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
// req.Detach. The Result carries the exit code.
func (c *Client) Run(ctx context.Context, req RunRequest, onEvent func(Event), onLog func(LogLine)) (*Result, error) {
	return c.stream(ctx, http.MethodPost, "/v1/run", nil, req, onEvent, onLog)
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
	var res *Result
	err := c.rawStream(ctx, method, path, q, body, func(m Message) error {
		switch {
		case m.Event != nil:
			if onEvent != nil {
				onEvent(*m.Event)
			}
		case m.Log != nil:
			if onLog != nil {
				onLog(*m.Log)
			}
		case m.Result != nil:
			res = m.Result
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if res == nil {
		return nil, fmt.Errorf("%s: the daemon closed the stream without a result (did it exit? see %s)", path, filepath.Join(c.root, "daemon.log"))
	}
	return res, nil
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
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &eb) != nil {
			eb.Error = string(bytes.TrimSpace(b))
		}
		return nil, errorFromBody(resp.StatusCode, eb)
	}
	return resp, nil
}

// isNoDaemon tells a socket nobody listens on (or that does not exist)
// from other failures.
func isNoDaemon(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
