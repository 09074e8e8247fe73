package netstack

import "path/filepath"

// SavedPorts reads the published ports of a project's service (all
// services when service is empty) from the saved state of root, without
// a Manager: for "berth port" while the supervisor owns the Manager.
// stateDir "" means root/network.
func SavedPorts(root, stateDir, project, service string) ([]PortBinding, error) {
	if stateDir == "" {
		stateDir = filepath.Join(root, "network")
	}
	st, err := loadState(stateDir)
	if err != nil {
		return nil, err
	}
	var out []PortBinding
	for _, b := range st.Ports {
		if b.Project == project && (service == "" || b.Service == service) {
			out = append(out, b)
		}
	}
	return out, nil
}
