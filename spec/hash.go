package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// ReadFile reads a file the stack names (an env_file, a secret or
// config file); os.ReadFile on the host. The spec package reads nothing
// itself: its caller hands it the reader.
type ReadFile func(path string) ([]byte, error)

// ServiceHash returns a stable hash (sha256, hex) of what makes up the
// running container of service name: its normalized configuration without
// the fields that do not change a container (replicas, depends_on,
// profiles, build, develop), plus the contents of the env_files, secrets
// and configs it uses, read with read. Editing a secret file therefore
// changes the hash (Compose misses that: docker/compose#11900).
func ServiceHash(p *Project, name string, read ReadFile) (string, error) {
	s, ok := p.Service(name)
	if !ok {
		return "", fmt.Errorf("%w: no such service: %q", ErrInvalid, name)
	}
	c := *s
	c.Replicas = 0
	c.DependsOn = nil
	c.Profiles = nil
	c.Build = nil
	c.Develop = nil

	h := sha256.New()
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	writeField(h, "service", b)
	for _, f := range c.EnvFiles {
		if err := hashFile(h, read, "env_file", f); err != nil {
			return "", fmt.Errorf("service %q: env_file: %w", name, err)
		}
	}
	if err := hashRefs(h, read, "secret", c.Secrets, p.Secrets); err != nil {
		return "", fmt.Errorf("service %q: %w", name, err)
	}
	if err := hashRefs(h, read, "config", c.Configs, p.Configs); err != nil {
		return "", fmt.Errorf("service %q: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeField writes a length-prefixed, labelled field so that no two
// different inputs can produce the same byte stream.
func writeField(w io.Writer, label string, b []byte) {
	fmt.Fprintf(w, "%s:%d:", label, len(b))
	w.Write(b)
}

func hashFile(w io.Writer, read ReadFile, label, path string) error {
	b, err := read(path)
	if errors.Is(err, fs.ErrNotExist) {
		// An optional env_file that is absent: that absence is the state.
		writeField(w, label+"-missing", []byte(path))
		return nil
	}
	if err != nil {
		return err
	}
	writeField(w, label, []byte(path))
	writeField(w, label+"-content", b)
	return nil
}

func hashRefs(w io.Writer, read ReadFile, kind string, refs []FileRef, defs []File) error {
	for _, r := range refs {
		var def *File
		for i := range defs {
			if defs[i].Name == r.Source {
				def = &defs[i]
				break
			}
		}
		if def == nil {
			return fmt.Errorf("%s %q is not defined", kind, r.Source)
		}
		d, err := json.Marshal(def)
		if err != nil {
			return err
		}
		writeField(w, kind, d)
		switch {
		case def.File != "":
			if err := hashFile(w, read, kind+"-file", def.File); err != nil {
				return fmt.Errorf("%s %q: %w", kind, r.Source, err)
			}
		case def.Environment != "":
			writeField(w, kind+"-env", []byte(def.EnvironmentValue))
		}
	}
	return nil
}
