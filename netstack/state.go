package netstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
)

const stateFile = "netstack.json"

// netState is everything netstack made, saved after every change so that
// teardown works after a crash. It is only touched with Manager.mu held.
type netState struct {
	Version int `json:"version"`
	// IPForwardChanged records that berth turned net.ipv4.ip_forward on
	// (it was 0). berth leaves it on: other software may rely on it by now.
	IPForwardChanged bool                        `json:"ip_forward_changed,omitempty"`
	Networks         map[string]*networkState    `json:"networks"`
	Attachments      map[string]*attachmentState `json:"attachments"` // key attachKey(network, container)
	Ports            []PortBinding               `json:"ports,omitempty"`
}

type networkState struct {
	Network
	Used map[netip.Addr]string `json:"used"` // address -> container

	// bridgeIndex caches the bridge's ifindex (0: not looked up yet);
	// attaches read it without the manager's lock.
	bridgeIndex atomic.Int32
}

type attachmentState struct {
	Attachment
	Service  string   `json:"service,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	DNS      []string `json:"dns,omitempty"`
	NetNS    string   `json:"netns"`
}

func attachKey(networkID, container string) string { return networkID + "\x00" + container }

func newState() *netState {
	return &netState{Version: 1, Networks: map[string]*networkState{}, Attachments: map[string]*attachmentState{}}
}

// loadState reads the state file of dir; a missing file is an empty state.
func loadState(dir string) (*netState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, err
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("network state %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Networks == nil {
		st.Networks = map[string]*networkState{}
	}
	if st.Attachments == nil {
		st.Attachments = map[string]*attachmentState{}
	}
	for _, n := range st.Networks {
		if n.Used == nil {
			n.Used = map[netip.Addr]string{}
		}
	}
	return st, nil
}

// marshal encodes the state (ports sorted) for the state file, which
// Manager.writeState replaces atomically: a new file in the same
// directory, fsynced, renamed over the old one, then the directory
// fsynced, so a crash leaves either the old or the new state, never half
// of one.
func (st *netState) marshal() ([]byte, error) {
	sort.Slice(st.Ports, func(i, j int) bool { return st.Ports[i].less(st.Ports[j]) })
	return json.Marshal(st)
}

// writeFileAtomic replaces path with data through a temporary file and
// a rename; durable also syncs the file and its directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode, durable bool) error {
	return writeFileAtomicIf(path, data, perm, durable, func(rename func() error) error { return rename() })
}

// errStale, returned by a writeFileAtomicIf commit, drops the new file:
// the one in place is newer.
var errStale = errors.New("a newer file is in place")

// tmpSeq tells apart the temporary files of concurrent writers.
var tmpSeq atomic.Uint64

// writeFileAtomicIf is writeFileAtomic whose rename commit calls (or,
// returning errStale, skips).
func writeFileAtomicIf(path string, data []byte, perm os.FileMode, durable bool, commit func(rename func() error) error) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(tmpSeq.Add(1), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	err = commit(func() error {
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		renamed = true
		return nil
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil || !durable {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
