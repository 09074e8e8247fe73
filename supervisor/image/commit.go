package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// This file holds what an image builder (supervisor/build) needs beyond
// pulling and importing: storing a layer it made itself and committing an
// image from stored layers and a config.

// AddLayer stores an uncompressed layer tarball (OCI form: whiteouts as
// ".wh." entries) as a layer blob, unpacks it into layers/, and returns it.
// The blob is kept uncompressed (media type
// application/vnd.oci.image.layer.v1.tar), so its digest is its diffID.
// Adding a layer the store already has is cheap and returns the same Layer.
func (s *Store) AddLayer(ctx context.Context, tarPath string) (Layer, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return Layer{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Layer{}, err
	}
	dgst := "sha256:" + hex.EncodeToString(h.Sum(nil))
	ly := Layer{Digest: dgst, DiffID: dgst, MediaType: string(types.OCIUncompressedLayer), Size: n}
	lock, err := s.sharedStore()
	if err != nil {
		return Layer{}, err
	}
	defer lock.release()
	if !s.hasBlob(dgst) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return Layer{}, err
		}
		if err := s.putBlob(dgst, n, f); err != nil {
			return Layer{}, err
		}
	}
	if err := s.unpackLayer(ctx, dgst, dgst); err != nil {
		return Layer{}, err
	}
	return ly, nil
}

// HasLayer reports whether a layer's blob and its unpacked directory are
// both in the store (Prune may have removed either since it was added).
func (s *Store) HasLayer(l Layer) bool {
	if _, err := sha256Hex(l.DiffID); err != nil {
		return false
	}
	if _, err := sha256Hex(l.Digest); err != nil {
		return false
	}
	return s.hasBlob(l.Digest) && s.hasLayer(l.DiffID)
}

// UpperDir is the upper (writable) directory of a container rootfs made by
// Prepare: after Unmount it holds exactly the container's changes, in
// overlayfs form (whiteouts are 0/0 character devices, opaque directories
// carry trusted.overlay.opaque=y).
func (s *Store) UpperDir(id string) string {
	return filepath.Join(s.root, "containers", id, "upper")
}

// CommitOptions describe an image to commit from stored layers.
type CommitOptions struct {
	// Layers are the image's layers, bottom first; each must be in the
	// store (AddLayer, or another image's).
	Layers []Layer
	// Config is the image config. Its rootfs is set from Layers; its
	// created time is set to now when zero. OS and architecture default
	// to linux and the host's.
	Config *v1.ConfigFile
	// Names are name:tag references pointing at the new image (moved
	// from any image that had them). Empty leaves it dangling.
	Names []string
}

// Commit writes an image made of stored layers and a config (an OCI
// manifest and config) and records it in the index under opts.Names.
// An image needs at least one layer.
func (s *Store) Commit(ctx context.Context, opts CommitOptions) (*Image, error) {
	if len(opts.Layers) == 0 {
		return nil, errors.New("commit: an image needs at least one layer")
	}
	if opts.Config == nil {
		return nil, errors.New("commit: no config")
	}
	var names []string
	for _, r := range opts.Names {
		if _, err := s.parseTagOnly(r); err != nil {
			return nil, err
		}
		n, err := NormalizeName(r)
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	lock, err := s.sharedStore()
	if err != nil {
		return nil, err
	}
	defer lock.release()
	cf := opts.Config.DeepCopy()
	if cf.OS == "" || cf.Architecture == "" {
		plat, err := ParsePlatform("")
		if err != nil {
			return nil, err
		}
		cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	}
	if cf.Created.IsZero() {
		cf.Created = v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	}
	cf.RootFS = v1.RootFS{Type: "layers"}
	man := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for _, ly := range opts.Layers {
		if !s.HasLayer(ly) {
			return nil, fmt.Errorf("commit: layer %s is not in the store", shortHex(ly.DiffID, 12))
		}
		diff, err := v1.NewHash(ly.DiffID)
		if err != nil {
			return nil, err
		}
		dg, err := v1.NewHash(ly.Digest)
		if err != nil {
			return nil, err
		}
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, diff)
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: types.MediaType(ly.MediaType), Size: ly.Size, Digest: dg})
	}
	rawConfig, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	cfgDigest, err := s.putBlobBytes(rawConfig)
	if err != nil {
		return nil, err
	}
	ch, err := v1.NewHash(cfgDigest)
	if err != nil {
		return nil, err
	}
	man.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawConfig)), Digest: ch}
	rawManifest, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	manDigest, err := s.putBlobBytes(rawManifest)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	im := &Image{
		ID:        cfgDigest,
		Manifest:  manDigest,
		MediaType: string(types.OCIManifestSchema1),
		Names:     names,
		Layers:    append([]Layer(nil), opts.Layers...),
		Platform:  platformString(cf.OS, cf.Architecture, cf.Variant),
		Created:   cf.Created.Time.UTC(),
		Added:     time.Now().UTC(),
	}
	if err := s.addImage(im); err != nil {
		return nil, err
	}
	return s.Get(im.ID)
}

// UnpackArchive extracts a tar archive (plain, gzip or zstd) into dir, as
// Dockerfile ADD does with a local archive: every path stays inside dir
// (symlinks and ".." are resolved within it) and existing files are
// replaced.
func UnpackArchive(r io.Reader, dir string) error {
	_, err := unpackTar(r, dir)
	return err
}
