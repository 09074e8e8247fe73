package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// bootIDPath is where the daemon remembers the kernel boot it last ran in.
func bootIDPath(root string) string { return filepath.Join(root, "state", "boot_id") }

// currentBootID is the kernel's id of this boot.
func currentBootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return string(bytes.TrimSpace(b))
}

// markBoot notes the boot the daemon runs in and reports whether the host
// restarted since the daemon last ran on this root. On a new boot, every
// container that was running is recorded as exited ("the host restarted")
// before the engine adopts it: the engine would otherwise apply each
// container's restart policy on its own, in no particular order, and the
// boot restore brings them back in dependency order instead.
//
// This edits the engine's container state files through the engine's own
// loadState/saveState; it is a stopgap until the engine can adopt without
// restarting (reported to the engine's owner).
func (d *Daemon) markBoot() bool {
	id := d.cfg.BootID
	if id == "" {
		id = currentBootID()
	}
	if id == "" {
		return false
	}
	path := bootIDPath(d.cfg.Root)
	prev, _ := os.ReadFile(path)
	prevID := string(bytes.TrimSpace(prev))
	if prevID == id {
		return false
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
		if err := writeFileAtomic(path, []byte(id+"\n"), true); err != nil {
			d.log.Warn("saving boot id", "err", err)
		}
	}
	if prevID == "" {
		// First run on this root (or before boot ids were kept): there is
		// no earlier boot to tell apart.
		return false
	}
	dir := filepath.Join(d.cfg.Root, "state", "containers")
	ents, _ := os.ReadDir(dir)
	now := time.Now().UTC()
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		p := filepath.Join(dir, n)
		st, err := loadState(p)
		if err != nil {
			continue
		}
		switch st.Info.State {
		case StateRunning, StatePaused, StateRestarting:
		default:
			continue
		}
		st.Info.State = StateExited
		st.Info.ExitCode = 255
		st.Info.Error = "the host restarted"
		st.Info.Pid = 0
		st.Info.FinishedAt = now
		st.Info.Health = HealthNone
		st.InitStartTime = 0
		if err := saveState(p, st, true); err != nil {
			d.log.Warn("marking container exited after a reboot", "file", p, "err", err)
		}
	}
	return true
}
