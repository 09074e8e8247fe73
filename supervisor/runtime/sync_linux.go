package runtime

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The parent and the container init talk over a SOCK_SEQPACKET
// socketpair (the init's fd 3): one message per packet, so no framing is
// needed, and SCM_RIGHTS carries the pty master. The parent sends the
// initConfig once, after the init's cgroup is set up; the init answers
// with msgConsole (with an fd), then msgReady (create) or msgError. An
// exec init answers nothing on success: the socket is close-on-exec, so
// the parent reads EOF once execve succeeded.

const (
	msgReady   = "ready"
	msgError   = "error"
	msgConsole = "console"
	msgHooks   = "hooks"  // init → parent: run createRuntime/prestart hooks now
	msgResume  = "resume" // parent → init: hooks done
)

type syncMsg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
}

// syncMsg is encoded by hand: the init sends one or two, and on the
// reflection path encoding/json would first build its encoder for the
// type, which costs the init more than the rest of the message.

func (m syncMsg) MarshalJSON() ([]byte, error) {
	kv := map[string]string{"type": m.Type}
	if m.Error != "" {
		kv["error"] = m.Error
	}
	return json.Marshal(kv)
}

func (m *syncMsg) UnmarshalJSON(b []byte) error {
	var kv map[string]string
	if err := json.Unmarshal(b, &kv); err != nil {
		return err
	}
	*m = syncMsg{Type: kv["type"], Error: kv["error"]}
	return nil
}

const maxSyncMsg = 4 << 20

func newSyncPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

func sendPacket(f *os.File, v any, fd int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sendRaw(f, b, fd)
}

// sendRaw sends b as one packet, with fd (when >= 0) passed along.
func sendRaw(f *os.File, b []byte, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	err := retryEINTR(func() error { return unix.Sendmsg(int(f.Fd()), b, oob, nil, 0) })
	if err != nil {
		return os.NewSyscallError("sendmsg", err)
	}
	return nil
}

// recvPacket reads one packet into v and returns a passed fd (or -1).
// io.EOF means the peer closed its end.
func recvPacket(f *os.File, v any) (int, error) {
	b, fd, err := recvRaw(f)
	if err != nil {
		return -1, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("sync message: %w", err)
	}
	return fd, nil
}

// recvRaw reads one packet and returns it with a passed fd (or -1).
func recvRaw(f *os.File) ([]byte, int, error) {
	// Peek at the packet's length first (MSG_TRUNC reports the whole
	// length of a SOCK_SEQPACKET packet): a buffer of the largest size
	// allowed would cost every init megabytes of zeroed, faulted-in pages.
	var size int
	var peek [1]byte
	err := retryEINTR(func() error {
		var e error
		size, _, _, _, e = unix.Recvmsg(int(f.Fd()), peek[:], nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return e
	})
	if err != nil {
		return nil, -1, os.NewSyscallError("recvmsg", err)
	}
	if size > maxSyncMsg {
		return nil, -1, fmt.Errorf("sync message of %d bytes is over the limit of %d", size, maxSyncMsg)
	}
	buf := make([]byte, max(size, 1))
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn int
	err = retryEINTR(func() error {
		var e error
		n, oobn, _, _, e = unix.Recvmsg(int(f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return e
	})
	if err != nil {
		return nil, -1, os.NewSyscallError("recvmsg", err)
	}
	if n == 0 && oobn == 0 {
		return nil, -1, io.EOF
	}
	fd := -1
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err == nil {
					for _, x := range fds {
						if fd < 0 {
							fd = x
						} else {
							unix.Close(x)
						}
					}
				}
			}
		}
	}
	return buf[:n], fd, nil
}
