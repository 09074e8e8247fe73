//go:build !linux

package netstack

// Network namespaces need Linux.

func CreateNetNS(path string) error   { return ErrNotSupported }
func RemoveNetNS(path string) error   { return nil }
func IsNetNSMounted(path string) bool { return false }

func SetNetNSSysctls(path string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	return ErrNotSupported
}
