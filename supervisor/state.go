package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// stateVersion is the version of the container state file format.
const stateVersion = 1

// Network modes of a container, as recorded in its state.
const (
	netModeBridge = "bridge" // own netns file, attached to the service's networks
	netModeNone   = "none"   // own netns file, loopback only
	netModeHost   = "host"   // the host's namespace
	netModeShared = "shared" // another container's netns file (service:X, container:X)
)

// containerState is what $ROOT/state/containers/NAME.json holds: enough to
// adopt, restart and remove the container without the stack file.
type containerState struct {
	Version int           `json:"version"`
	Info    ContainerInfo `json:"info"`
	// Service is the service as created (with the image's health check
	// filled in when the service had none).
	Service *spec.Service `json:"service"`
	// ProjectDir is the project's working directory.
	ProjectDir string `json:"project_dir,omitempty"`

	InitStartTime uint64 `json:"init_start_time,omitempty"`
	StopSignal    string `json:"stop_signal,omitempty"`

	NetMode   string `json:"net_mode"`
	NetNSPath string `json:"netns_path,omitempty"` // joined by the container
	OwnNetNS  bool   `json:"own_netns,omitempty"`  // NetNSPath is ours to remove
	// NetSysctls are the net.* sysctls applied to our own netns.
	NetSysctls map[string]string `json:"net_sysctls,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	// BootID is the kernel's boot id when the container last started:
	// a different one at adoption means the host rebooted.
	BootID string `json:"boot_id,omitempty"`

	// Mounts are the volume mounts Prepare made (volumes_from reads them).
	Mounts []specs.Mount `json:"mounts,omitempty"`

	// LogOffsets are the bytes of stdout.raw and stderr.raw already
	// ingested into the log.
	LogOffsets [2]int64 `json:"log_offsets"`

	UnhealthyRestarts int `json:"unhealthy_restarts,omitempty"`
}

// writeFileAtomic replaces path with data: a temp file in the same
// directory, fsynced when durable, renamed over path, and, when path is
// new, the directory fsynced so the rename itself survives a crash.
func writeFileAtomic(path string, data []byte, durable bool) (retErr error) {
	return writeFileAtomicVia(path, filepath.Dir(path), data, durable)
}

// writeFileAtomicVia is writeFileAtomic with the temporary file made in
// tmpDir, on the same filesystem (see saveState), or beside path when
// tmpDir is empty or gone.
func writeFileAtomicVia(path, tmpDir string, data []byte, durable bool) (retErr error) {
	dir := filepath.Dir(path)
	if tmpDir == "" {
		tmpDir = dir
	}
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".tmp-*")
	if errors.Is(err, os.ErrNotExist) && tmpDir != dir {
		f, err = os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	}
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if retErr != nil {
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
	// A rename over a file that is there changes an entry the directory
	// already has on disk: after a power loss it names the old file or
	// the new one, both whole, so only a new name needs the directory
	// synced. (Only a durable write asks: a health probe's save is not.)
	syncDir := false
	if durable {
		_, err := os.Lstat(path)
		syncDir = err != nil
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !syncDir {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// saveState writes a container's state file, through a temporary file
// in the container's own directory (tmpDir) rather than beside the state
// files: the kernel puts a new file's inode near its directory's, and
// ext4 without a journal passes over every inode freed in the last minute
// to find a free one, so the temporary files of every container in one
// directory made each save of an up slower than the one before.
func saveState(path, tmpDir string, st *containerState, durable bool) error {
	st.Version = stateVersion
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomicVia(path, tmpDir, b, durable)
}

func loadState(path string) (*containerState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st containerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("container state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("container state %s: unknown version %d", path, st.Version)
	}
	if st.Service == nil || st.Info.Name == "" {
		return nil, fmt.Errorf("container state %s: incomplete", path)
	}
	return &st, nil
}

// exitRecord is what the keeper writes to $ROOT/exits/PID-STARTTIME.json
// when it reaps a container init whose parent (the daemon) had died.
type exitRecord struct {
	Code   int    `json:"code"`
	Signal int    `json:"signal"`
	Time   string `json:"time"`
}

// readExitRecord returns the keeper's record for the process pid that
// started at start, and removes it.
func readExitRecord(path string) (*exitRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r exitRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("exit record %s: %w", path, err)
	}
	if r.Signal > 0 && r.Code == 0 {
		r.Code = 128 + r.Signal
	}
	return &r, nil
}

var errNoState = errors.New("no state")

// bootID is the kernel's boot id ("" where there is none).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}
