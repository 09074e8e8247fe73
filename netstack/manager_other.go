//go:build !linux

package netstack

import (
	"time"

	"github.com/berth-dev/berth/spec"
)

// Driver options berth honours (Docker's names).
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMTU        = "com.docker.network.driver.mtu"
	OptMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// Manager is only implemented on Linux.
type Manager struct{}

// New returns ErrNotSupported off Linux.
func New(cfg Config) (*Manager, error) { return nil, ErrNotSupported }

// NetworkID is the ID of a project's network key.
func NetworkID(project, network string) string { return project + "/" + network }

// LoopbackUp returns ErrNotSupported off Linux.
func LoopbackUp(netnsPath string) error { return ErrNotSupported }

func (m *Manager) Table() string                                        { return "" }
func (m *Manager) Restore() error                                       { return ErrNotSupported }
func (m *Manager) Close() error                                         { return nil }
func (m *Manager) EnsureNetwork(string, spec.Network) (*Network, error) { return nil, ErrNotSupported }
func (m *Manager) EnsureNetworks(string, []spec.Network) ([]*Network, error) {
	return nil, ErrNotSupported
}
func (m *Manager) RemoveNetwork(project, network string) error       { return ErrNotSupported }
func (m *Manager) RemoveProject(project string) error                { return ErrNotSupported }
func (m *Manager) RemoveAll() error                                  { return ErrNotSupported }
func (m *Manager) Networks() []Network                               { return nil }
func (m *Manager) Attach(string, AttachOptions) (*Attachment, error) { return nil, ErrNotSupported }
func (m *Manager) Detach(networkID, container string) error          { return ErrNotSupported }
func (m *Manager) DetachAll(container string) error                  { return ErrNotSupported }
func (m *Manager) DetachAllKeepLinks(string) ([]string, error)       { return nil, ErrNotSupported }
func WaitLinksGone([]string, time.Duration) error                    { return ErrNotSupported }
func (m *Manager) Register(container string) error                   { return ErrNotSupported }
func (m *Manager) Unregister(container string)                       {}
func (m *Manager) DNSServer(networkID string) *DNSServer             { return nil }
func (m *Manager) Attachments(container string) []Attachment         { return nil }
func (m *Manager) CheckPorts([]spec.Port) error                      { return ErrNotSupported }
func (m *Manager) PublishPorts(string, string, string, []spec.Port) ([]PortBinding, error) {
	return nil, ErrNotSupported
}
func (m *Manager) UnpublishPorts(container string) error       { return ErrNotSupported }
func (m *Manager) Ports(project, service string) []PortBinding { return nil }

func (m *Manager) Port(string, string, uint16, string) []PortBinding { return nil }
