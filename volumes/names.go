package volumes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/berth-dev/berth/spec"
)

// Labels berth puts on the volumes it creates for a project. The project
// and volume keys use Compose's label names so that tooling written for
// Compose recognises them.
const (
	LabelProject   = "com.docker.compose.project" // project name
	LabelVolume    = "com.docker.compose.volume"  // key in the project's volumes:
	LabelAnonymous = "berth.anonymous"            // "true" on anonymous volumes
	LabelContainer = "berth.container"            // anonymous volumes: owning container name
	LabelTarget    = "berth.target"               // anonymous volumes: mount target in the container
)

// DriverLocal is the only volume driver berth has.
const DriverLocal = "local"

// validName is Docker's rule for volume names; it also keeps every name a
// single path element under the volumes directory.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// maxNameLen keeps a name (plus berth's temporary suffixes) well below
// NAME_MAX.
const maxNameLen = 200

// ValidateName reports whether name can be a volume name.
func ValidateName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: volume name %q is longer than %d characters", ErrInvalid, name, maxNameLen)
	}
	if !validName.MatchString(name) {
		return fmt.Errorf("%w: volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", ErrInvalid, name)
	}
	return nil
}

// VolumeName returns the name of the project volume with key key: its
// name: if the file sets one (spec.Volume.ActualName), else PROJECT_KEY,
// or the bare key for an external volume, as in Compose.
func VolumeName(p *spec.Project, key string) (string, error) {
	for i := range p.Volumes {
		v := &p.Volumes[i]
		if v.Name != key {
			continue
		}
		switch {
		case v.ActualName != "":
			return v.ActualName, nil
		case v.External:
			return key, nil
		}
		return p.Name + "_" + key, nil
	}
	return "", fmt.Errorf("%w: volume %q is not declared in the project's volumes", ErrInvalid, key)
}

// AnonymousName returns the name of the anonymous volume that container
// containerName of project has at target. The name depends only on these
// three, so a container recreated under the same name (the same service
// replica) finds its anonymous volumes again, as Compose keeps them.
func AnonymousName(project, containerName, target string) string {
	h := sha256.New()
	for _, s := range []string{project, containerName, target} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "anon-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// ExternalNames returns the actual names of p's external volumes, for
// RemoveProjectVolumes.
func ExternalNames(p *spec.Project) []string {
	var out []string
	for _, v := range p.Volumes {
		if !v.External {
			continue
		}
		if n, err := VolumeName(p, v.Name); err == nil {
			out = append(out, n)
		}
	}
	return out
}
