package main

import (
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ptySession joins our terminal to the master of a pty whose other end a
// container process holds (exec, run, runtime run): the master's output
// is copied to our stdout and, when asked, our stdin to the master, with
// our terminal in raw mode meanwhile; the pty's window size follows ours,
// at the start and on SIGWINCH.
type ptySession struct {
	console *os.File
	restore func() // puts our terminal back; nil when it was not raw
	winch   chan os.Signal
	outDone chan struct{}
}

// startPty starts copying between our stdio and console, which it owns
// from now on; copyStdin false leaves the pty's input alone (run -i=false).
func startPty(console *os.File, copyStdin bool) *ptySession {
	s := &ptySession{console: console, winch: make(chan os.Signal, 1), outDone: make(chan struct{})}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		if restore, err := makeRaw(fd); err == nil {
			s.restore = restore
		}
	}
	resizePty(console)
	signal.Notify(s.winch, unix.SIGWINCH)
	go func() {
		for range s.winch {
			resizePty(console)
		}
	}()
	if copyStdin {
		go func() { _, _ = io.Copy(console, os.Stdin) }()
	}
	go func() {
		defer close(s.outDone)
		_, _ = io.Copy(os.Stdout, console)
	}()
	return s
}

// done is closed once the pty's output has ended: reading the master
// fails (EIO) when the last holder of its other end has gone.
func (s *ptySession) done() <-chan struct{} { return s.outDone }

// end waits up to grace for the output to end (a background process may
// keep the pty open), then restores our terminal and closes the master.
func (s *ptySession) end(grace time.Duration) {
	select {
	case <-s.outDone:
	case <-time.After(grace):
	}
	signal.Stop(s.winch)
	close(s.winch)
	if s.restore != nil {
		s.restore()
	}
	s.console.Close()
}

// terminalSize is the size of our terminal (stdin's, else stdout's).
func terminalSize() (*unix.Winsize, error) {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		ws, err = unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	}
	return ws, err
}

// resizePty gives the pty master the size of our terminal.
func resizePty(console *os.File) {
	if ws, err := terminalSize(); err == nil {
		_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, ws)
	}
}
