package runtime

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// Paused is runc's extra status for a frozen container.
const Paused Status = "paused"

// Pause freezes every process of a running container (cgroup freezer).
func (c *Container) Pause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cg == nil {
		return fmt.Errorf("container %q has no cgroup: %w", c.id, ErrNotSupported)
	}
	if c.statusLocked() != specs.StateRunning {
		return fmt.Errorf("container %q: %w", c.id, ErrNotRunning)
	}
	return c.cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cg == nil {
		return fmt.Errorf("container %q has no cgroup: %w", c.id, ErrNotSupported)
	}
	if !c.initAliveLocked() {
		return fmt.Errorf("container %q: %w", c.id, ErrNotRunning)
	}
	return c.cg.Thaw()
}

// Update changes the resources of a created or running container.
func (c *Container) Update(r *specs.LinuxResources) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cg == nil {
		return fmt.Errorf("container %q has no cgroup: %w", c.id, ErrNotSupported)
	}
	if !c.initAliveLocked() {
		return fmt.Errorf("container %q: %w", c.id, ErrNotRunning)
	}
	if err := c.cg.Set(r); err != nil {
		return err
	}
	spec, err := c.specLocked()
	if err != nil || spec.Linux == nil {
		return err
	}
	spec.Linux.Resources = r
	if err := c.setConfigLocked(spec); err != nil {
		return err
	}
	return c.saveLocked()
}

// pausedLocked reports whether the cgroup is frozen.
func (c *Container) pausedLocked() bool {
	if c.cg == nil {
		return false
	}
	f, err := cgroups.IsFrozen(c.cg)
	return err == nil && f
}
