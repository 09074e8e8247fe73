package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Check verifies the store (an fsck): every blob's content matches its
// name, every image in the index has its manifest, config and layer blobs
// and its unpacked layers, and nothing half-written sits where it would be
// trusted. It returns one line per problem; none means clean. Leftovers in
// tmp/ are not problems: nothing there is ever trusted.
func (s *Store) Check() ([]string, error) {
	lock, err := s.lock("store.lock", unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	var problems []string
	bad := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(s.root, "blobs", "sha256"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		p := filepath.Join(s.root, "blobs", "sha256", e.Name())
		if !e.Type().IsRegular() {
			problems = append(problems, fmt.Sprintf("blob %s: not a regular file", e.Name()))
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			problems = append(problems, fmt.Sprintf("blob %s: content hashes to %s", e.Name(), got))
			bad["sha256:"+e.Name()] = true
		}
	}
	ents, err = os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if _, err := sha256Hex("sha256:" + e.Name()); err != nil || !e.IsDir() {
			problems = append(problems, fmt.Sprintf("layers/%s: not a layer directory", e.Name()))
		}
	}
	idx, err := s.readIndex()
	if err != nil {
		return append(problems, err.Error()), nil
	}
	names := map[string]string{}
	for id, im := range idx.Images {
		short := shortHex(id, 12)
		if im.ID != id {
			problems = append(problems, fmt.Sprintf("image %s: recorded under ID %s", im.ID, id))
		}
		need := []string{im.ID, im.Manifest}
		for _, l := range im.Layers {
			need = append(need, l.Digest)
			if !s.hasLayer(l.DiffID) {
				problems = append(problems, fmt.Sprintf("image %s: layer %s not unpacked", short, l.DiffID))
			}
		}
		for _, d := range need {
			if _, err := sha256Hex(d); err != nil {
				problems = append(problems, fmt.Sprintf("image %s: %v", short, err))
			} else if !s.hasBlob(d) {
				problems = append(problems, fmt.Sprintf("image %s: blob %s missing", short, d))
			} else if bad[d] {
				problems = append(problems, fmt.Sprintf("image %s: blob %s corrupt", short, d))
			}
		}
		for _, n := range im.Names {
			if other, ok := names[n]; ok {
				problems = append(problems, fmt.Sprintf("name %s points at both %s and %s", n, shortHex(other, 12), short))
			}
			names[n] = id
		}
	}
	cents, _ := os.ReadDir(filepath.Join(s.root, "containers"))
	for _, e := range cents {
		b, err := os.ReadFile(filepath.Join(s.root, "containers", e.Name(), "lowers"))
		if err != nil {
			continue // being prepared or released
		}
		for _, d := range strings.Fields(string(b)) {
			if !s.hasLayer(d) {
				problems = append(problems, fmt.Sprintf("container %s: layer %s missing", e.Name(), d))
			}
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// tmpEntries lists what is in tmp/ (tests and diagnostics).
func (s *Store) tmpEntries() []string {
	ents, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	var out []string
	for _, e := range ents {
		{
			out = append(out, e.Name())
		}
	}
	return out
}
