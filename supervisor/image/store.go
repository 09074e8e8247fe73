package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Errors callers branch on with errors.Is.
var (
	ErrNotFound     = errors.New("image not found")
	ErrDenied       = errors.New("pull access denied")
	ErrDigest       = errors.New("digest mismatch")
	ErrNotSupported = errors.New("not supported on this platform")
	ErrInUse        = errors.New("in use")
)

// Layer is one layer of a stored image.
type Layer struct {
	Digest    string `json:"digest"`    // compressed blob digest (sha256:...)
	DiffID    string `json:"diffID"`    // uncompressed tar digest (sha256:...)
	MediaType string `json:"mediaType"` // layer media type
	Size      int64  `json:"size"`      // compressed size in bytes
}

// Image is the stored metadata of one image. ID is the config digest, as in
// Docker.
type Image struct {
	ID        string    `json:"id"`
	Manifest  string    `json:"manifest"`              // manifest digest
	MediaType string    `json:"manifestMediaType"`     // manifest media type
	Names     []string  `json:"names,omitempty"`       // references, e.g. docker.io/library/redis:latest
	Digests   []string  `json:"repoDigests,omitempty"` // repo@sha256:... it was pulled by
	Layers    []Layer   `json:"layers"`
	Platform  string    `json:"platform,omitempty"` // os/arch[/variant]
	Created   time.Time `json:"created,omitzero"`   // from the image config
	Added     time.Time `json:"added"`              // when it entered the store
}

// Size is the sum of the image's compressed layer sizes.
func (im *Image) Size() int64 {
	var n int64
	for _, l := range im.Layers {
		n += l.Size
	}
	return n
}

// ShortID is the first 12 hex digits of the ID.
func (im *Image) ShortID() string { return shortHex(im.ID, 12) }

func shortHex(d string, n int) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > n {
		h = h[:n]
	}
	return h
}

// index is index.json.
type index struct {
	Version int               `json:"version"`
	Images  map[string]*Image `json:"images"` // by ID
}

// Store is an image store rooted at a directory. Its methods are safe for
// concurrent use by goroutines and by several berth processes sharing the
// root: file locks serialise what must be serialised.
type Store struct {
	root string

	// The last index decoded for lookups (Get, List) and the bytes it
	// was decoded from: reading index.json is cheap, decoding it is not,
	// and an up of many services looks its images up once each.
	cacheMu  sync.Mutex
	cacheRaw []byte
	cache    *index
}

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("image store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"", "blobs/sha256", "layers", "l", "containers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	SpreadSubdirs(filepath.Join(abs, "containers"))
	return &Store{root: abs}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) blobPath(dgst string) string {
	return filepath.Join(s.root, "blobs", "sha256", strings.TrimPrefix(dgst, "sha256:"))
}

func (s *Store) layerPath(diffID string) string {
	return filepath.Join(s.root, "layers", strings.TrimPrefix(diffID, "sha256:"))
}

// fileLock is a held flock; release drops it.
type fileLock struct{ f *os.File }

func (l fileLock) release() { l.f.Close() } // closing the description drops the flock

// lock takes a flock on a file of the store. Each call opens its own file
// description, so goroutines of one process exclude each other as two
// processes would.
func (s *Store) lock(name string, how int) (fileLock, error) {
	f, err := os.OpenFile(filepath.Join(s.root, name), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fileLock{}, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return fileLock{}, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return fileLock{f}, nil
}

// sharedStore holds the store against pruning. When no other process holds
// it, leftovers of killed runs in tmp/ are removed first.
func (s *Store) sharedStore() (fileLock, error) {
	if l, err := s.lock("store.lock", unix.LOCK_EX|unix.LOCK_NB); err == nil {
		s.cleanTmpLocked()
		l.release()
	}
	return s.lock("store.lock", unix.LOCK_SH)
}

// cleanTmpLocked empties tmp/; the store lock must be held exclusively.
func (s *Store) cleanTmpLocked() {
	dir := filepath.Join(s.root, "tmp")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		makeWritable(p)
		os.RemoveAll(p)
	}
}

// readIndex reads index.json; a missing file is an empty store.
func (s *Store) readIndex() (*index, error) {
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return emptyIndex(), nil
	}
	if err != nil {
		return nil, err
	}
	return decodeIndex(b)
}

func emptyIndex() *index { return &index{Version: 1, Images: map[string]*Image{}} }

func decodeIndex(b []byte) (*index, error) {
	idx := emptyIndex()
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("image store: corrupt index.json: %w", err)
	}
	if idx.Images == nil {
		idx.Images = map[string]*Image{}
	}
	return idx, nil
}

// lookupIndex is readIndex for lookups: the result is shared and must
// not be changed.
func (s *Store) lookupIndex() (*index, error) {
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return emptyIndex(), nil
	}
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cache != nil && bytes.Equal(b, s.cacheRaw) {
		return s.cache, nil
	}
	idx, err := decodeIndex(b)
	if err != nil {
		return nil, err
	}
	s.cache, s.cacheRaw = idx, b
	return idx, nil
}

// updateIndex runs fn on the current index under index.lock and writes the
// result atomically if fn returns nil.
func (s *Store) updateIndex(fn func(*index) error) error {
	l, err := s.lock("index.lock", unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer l.release()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.root, "index.json"), b)
}

// writeFileAtomic writes b to path+".tmp", syncs it and renames it over
// path, then syncs path's directory. Callers serialise writers of one path
// (index.lock for index.json).
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// hasBlob reports whether a verified blob is present.
func (s *Store) hasBlob(dgst string) bool {
	_, err := os.Lstat(s.blobPath(dgst))
	return err == nil
}

// putBlob copies r into the store as blob dgst. The content is hashed while
// it is written to a temp file and only renamed into place if digest (and
// size, when size >= 0) match; otherwise nothing is stored and the error
// wraps ErrDigest.
func (s *Store) putBlob(dgst string, size int64, r io.Reader) error {
	hexd, err := sha256Hex(dgst)
	if err != nil {
		return err
	}
	if s.hasBlob(dgst) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "blob-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hexd || (size >= 0 && n != size) {
		return fmt.Errorf("blob %s: got sha256:%s (%d bytes, want %d): %w", dgst, got, n, size, ErrDigest)
	}
	if err := os.Rename(tmp, s.blobPath(dgst)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(s.blobPath(dgst)))
}

// putBlobBytes stores b under its own digest and returns the digest.
func (s *Store) putBlobBytes(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	return d, s.putBlob(d, int64(len(b)), strings.NewReader(string(b)))
}

func sha256Hex(dgst string) (string, error) {
	h, ok := strings.CutPrefix(dgst, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("unsupported digest %q (want sha256:<64 hex>)", dgst)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("bad digest %q", dgst)
	}
	return strings.ToLower(h), nil
}

// readBlob returns a stored blob's contents.
func (s *Store) readBlob(dgst string) ([]byte, error) {
	if _, err := sha256Hex(dgst); err != nil {
		return nil, err
	}
	return os.ReadFile(s.blobPath(dgst))
}

// hasLayer reports whether a layer is unpacked (its directory only exists
// once complete).
func (s *Store) hasLayer(diffID string) bool {
	_, err := os.Lstat(s.layerPath(diffID))
	return err == nil
}

// List returns every stored image, newest first.
func (s *Store) List() ([]*Image, error) {
	idx, err := s.lookupIndex()
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(idx.Images))
	for _, im := range idx.Images {
		out = append(out, im.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Added.Equal(out[j].Added) {
			return out[i].Added.After(out[j].Added)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Get finds an image by name (short Docker Hub forms accepted), by ID or
// by a unique ID prefix of at least 4 hex digits. The error wraps
// ErrNotFound when nothing matches.
func (s *Store) Get(ref string) (*Image, error) {
	idx, err := s.lookupIndex()
	if err != nil {
		return nil, err
	}
	im, err := findLocked(idx, ref)
	if err != nil {
		return nil, err
	}
	return im.clone(), nil
}

// clone copies an image record out of a shared index.
func (im *Image) clone() *Image {
	c := *im
	c.Names = slices.Clone(im.Names)
	c.Digests = slices.Clone(im.Digests)
	c.Layers = slices.Clone(im.Layers)
	return &c
}

func findLocked(idx *index, ref string) (*Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty image reference: %w", ErrNotFound)
	}
	if n, err := NormalizeName(ref); err == nil {
		for _, im := range idx.Images {
			for _, nm := range im.Names {
				if nm == n {
					return im, nil
				}
			}
			for _, d := range im.Digests {
				if d == n {
					return im, nil
				}
			}
		}
	}
	id := strings.TrimPrefix(strings.ToLower(ref), "sha256:")
	if len(id) >= 4 && isHex(id) {
		var found *Image
		for k, im := range idx.Images {
			if strings.HasPrefix(strings.TrimPrefix(k, "sha256:"), id) {
				if found != nil {
					return nil, fmt.Errorf("image ID prefix %q is ambiguous", ref)
				}
				found = im
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// addImage records im in the index and points its names at it (a name moves
// from any other image that had it). Blobs and layers must already be stored.
func (s *Store) addImage(im *Image) error {
	return s.updateIndex(func(idx *index) error {
		old := idx.Images[im.ID]
		for _, other := range idx.Images {
			if other.ID == im.ID {
				continue
			}
			other.Names = without(other.Names, im.Names)
		}
		if old != nil {
			im.Names = union(old.Names, im.Names)
			im.Digests = union(old.Digests, im.Digests)
			im.Added = old.Added
		}
		idx.Images[im.ID] = im
		return nil
	})
}

func without(list, drop []string) []string {
	var out []string
	for _, x := range list {
		keep := true
		for _, d := range drop {
			if x == d {
				keep = false
			}
		}
		if keep {
			out = append(out, x)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// Tag adds a name (name:tag) to a stored image, moving it from any other
// image that had it.
func (s *Store) Tag(ref, newName string) error {
	t, err := s.parseTagOnly(newName)
	if err != nil {
		return err
	}
	n := canonical(t)
	im, err := s.Get(ref)
	if err != nil {
		return err
	}
	cp := *im
	cp.Names = []string{n}
	return s.addImage(&cp)
}

// Remove removes a name. The image's metadata goes when its last name goes
// (or when ref is an image ID, all its names go with it); its layers and
// blobs stay until Prune, which keeps whatever other images still use. It
// returns the IDs of images removed from the index.
func (s *Store) Remove(ref string) (removed []string, err error) {
	err = s.updateIndex(func(idx *index) error {
		im, err := findLocked(idx, ref)
		if err != nil {
			return err
		}
		n, nerr := NormalizeName(ref)
		byName := nerr == nil && (contains(im.Names, n) || contains(im.Digests, n))
		if byName && len(im.Names) > 1 && contains(im.Names, n) {
			im.Names = without(im.Names, []string{n})
			return nil
		}
		delete(idx.Images, im.ID)
		removed = append(removed, im.ID)
		return nil
	})
	return removed, err
}

func contains(list []string, x string) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

// PruneReport says what Prune removed.
type PruneReport struct {
	Images     []string // image IDs (dangling: neither names nor digests)
	Layers     int
	Blobs      int
	BytesFreed int64
}

// Prune removes dangling images (no names) that no container uses, then
// every layer and blob that no remaining image or container references, and
// leftovers in tmp/. It waits for running pulls to finish.
func (s *Store) Prune() (PruneReport, error) {
	var rep PruneReport
	l, err := s.lock("store.lock", unix.LOCK_EX)
	if err != nil {
		return rep, err
	}
	defer l.release()
	s.cleanTmpLocked()
	inUse := s.containerLayers()
	keepBlobs := map[string]bool{}
	keepLayers := map[string]bool{}
	err = s.updateIndex(func(idx *index) error {
		for id, im := range idx.Images {
			used := false
			for _, ly := range im.Layers {
				used = used || inUse[ly.DiffID]
			}
			if len(im.Names) == 0 && len(im.Digests) == 0 && !used {
				delete(idx.Images, id)
				rep.Images = append(rep.Images, id)
				continue
			}
			keepBlobs[im.ID] = true
			keepBlobs[im.Manifest] = true
			for _, ly := range im.Layers {
				keepBlobs[ly.Digest] = true
				keepLayers[ly.DiffID] = true
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	sort.Strings(rep.Images)
	for d := range inUse {
		keepLayers[d] = true
	}
	ents, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	for _, e := range ents {
		if keepLayers["sha256:"+e.Name()] {
			continue
		}
		p := filepath.Join(s.root, "layers", e.Name())
		rep.BytesFreed += duSize(p)
		makeWritable(p)
		if err := os.RemoveAll(p); err != nil {
			return rep, err
		}
		os.Remove(filepath.Join(s.root, "l", shortLink(e.Name())))
		rep.Layers++
	}
	ents, _ = os.ReadDir(filepath.Join(s.root, "blobs", "sha256"))
	for _, e := range ents {
		if keepBlobs["sha256:"+e.Name()] {
			continue
		}
		p := filepath.Join(s.root, "blobs", "sha256", e.Name())
		if fi, err := e.Info(); err == nil {
			rep.BytesFreed += fi.Size()
		}
		if err := os.Remove(p); err != nil {
			return rep, err
		}
		rep.Blobs++
	}
	return rep, nil
}

// containerLayers returns the diffIDs every prepared container uses.
func (s *Store) containerLayers() map[string]bool {
	used := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(s.root, "containers"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.root, "containers", e.Name(), "lowers"))
		if err != nil {
			continue
		}
		for _, d := range strings.Fields(string(b)) {
			used[d] = true
		}
	}
	return used
}

func duSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// makeWritable gives the owner write+exec on every directory under p so
// that RemoveAll can empty directories unpacked read-only (mode 0555 dirs in
// layers).
func makeWritable(p string) {
	filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o700 != 0o700 {
				os.Chmod(path, fi.Mode().Perm()|0o700)
			}
		}
		return nil
	})
}

// digestReader hashes what is read through it.
type digestReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newDigestReader(r io.Reader) *digestReader { return &digestReader{r: r, h: sha256.New()} }

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func (d *digestReader) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

// cleanRel maps a tar name to a path relative to the layer root; "" is the
// root itself. Clean("/"+name) removes every way for ".." to climb out.
func cleanRel(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}
