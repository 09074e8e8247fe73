package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// EnsureTimeout bounds how long EnsureDaemon waits for a daemon it started.
var EnsureTimeout = 60 * time.Second

// EnsureDaemon returns a client for the daemon of root, starting it when
// the socket does not answer: it spawns `berthBinary keeper --root ROOT`
// in a session of its own (setsid), stdio on $ROOT/daemon.log, and waits
// until the daemon answers. The keeper outlives the caller.
func EnsureDaemon(root, berthBinary string) (*Client, error) {
	c, err := Dial(root)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNoDaemon) {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	logPath := filepath.Join(root, "daemon.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	defer logf.Close()
	before, _ := logf.Seek(0, 2)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()

	cmd := exec.Command(berthBinary, "keeper", "--root", root)
	cmd.Stdin = devnull
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	c = New(root)
	deadline := time.Now().Add(EnsureTimeout)
	delay := 10 * time.Millisecond
	var keeperErr error
	keeperDone := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNoDaemon) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the berth daemon did not answer within %s: %s", EnsureTimeout, logTail(logPath, before))
		}
		if !keeperDone {
			select {
			case keeperErr = <-exited:
				// A keeper that exits at once either lost the race to
				// another one (which starts the daemon: keep waiting a
				// little) or failed.
				keeperDone = true
				if keeperErr != nil {
					return nil, fmt.Errorf("berth keeper: %v: %s", keeperErr, logTail(logPath, before))
				}
			case <-time.After(delay):
			}
		} else {
			time.Sleep(delay)
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// logTail returns what was appended to the log since offset, trimmed.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return "see " + path
	}
	b = bytes.TrimSpace(b[offset:])
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "see " + path
	}
	return string(b)
}
