package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Load stores the images of a docker-save tarball (what `docker save`
// writes) or an OCI image layout (a directory, or a tar of one), like
// `docker load`. Images get the names the archive gives them. platform
// picks the image from multi-platform indexes in a layout ("" = linux/host).
func (s *Store) Load(ctx context.Context, path, platform string, progress io.Writer) ([]*Image, error) {
	plat, err := ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	lock, err := s.sharedStore()
	if err != nil {
		return nil, err
	}
	defer lock.release()
	prog := newProgress(progress)
	prog.verb = "Loading"
	defer prog.close()
	if fi.IsDir() {
		return s.loadLayout(ctx, path, plat, prog)
	}
	members, err := tarMembers(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	switch {
	case members["manifest.json"]:
		return s.loadDockerSave(ctx, path, prog)
	case members["oci-layout"] && members["index.json"]:
		// Unpack the layout (with the same safe unpacker as layers) into
		// tmp/ and read it from there.
		dir, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "load-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		_, err = unpackTar(f, dir)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		return s.loadLayout(ctx, dir, plat, prog)
	}
	return nil, fmt.Errorf("load %s: neither a docker-save tarball (manifest.json) nor an OCI layout (oci-layout, index.json)", path)
}

// tarMembers lists the top-level regular files of a (possibly compressed)
// tar.
func tarMembers(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := decompress(f)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	out := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive: %w", err)
		}
		out[strings.TrimPrefix(cleanRel(h.Name), "./")] = true
	}
}

func (s *Store) loadDockerSave(ctx context.Context, path string, prog *progress) ([]*Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("load %s: manifest.json: %w", path, err)
	}
	var out []*Image
	for i, desc := range m {
		var img v1.Image
		var names []string
		for _, t := range desc.RepoTags {
			n, err := NormalizeName(t)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			names = append(names, n)
		}
		if len(desc.RepoTags) > 0 {
			tag, err := name.NewTag(desc.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			img, err = tarball.Image(opener, &tag)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
		} else if len(m) == 1 {
			img, err = tarball.Image(opener, nil)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
		} else {
			return nil, fmt.Errorf("load %s: image %d has no tag and the archive holds several images", path, i)
		}
		im, err := s.storeLoaded(ctx, img, names, nil, prog)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		out = append(out, im)
	}
	return out, nil
}

func (s *Store) loadLayout(ctx context.Context, dir string, plat v1.Platform, prog *progress) ([]*Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	var out []*Image
	for _, d := range im.Manifests {
		var names []string
		if n := d.Annotations["io.containerd.image.name"]; n != "" {
			names = append(names, n)
		} else if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" && strings.ContainsAny(n, "/:") {
			names = append(names, n)
		}
		for i, n := range names {
			if names[i], err = NormalizeName(n); err != nil {
				return nil, fmt.Errorf("load %s: %w", dir, err)
			}
		}
		var img v1.Image
		switch {
		case d.MediaType.IsImage():
			img, err = ii.Image(d.Digest)
		case d.MediaType.IsIndex():
			img, err = pickPlatform(ii, d.Digest, plat)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
		st, err := s.storeLoaded(ctx, img, names, nil, prog)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load %s: no images in the layout", dir)
	}
	return out, nil
}

func pickPlatform(ii v1.ImageIndex, d v1.Hash, plat v1.Platform) (v1.Image, error) {
	child, err := ii.ImageIndex(d)
	if err != nil {
		return nil, err
	}
	m, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, cd := range m.Manifests {
		if cd.Platform != nil && cd.Platform.Satisfies(plat) && cd.MediaType.IsImage() {
			return child.Image(cd.Digest)
		}
	}
	return nil, fmt.Errorf("no image for platform %s in index %s", platformString(plat.OS, plat.Architecture, plat.Variant), d)
}

func (s *Store) storeLoaded(ctx context.Context, img v1.Image, names, digests []string, prog *progress) (*Image, error) {
	im, err := s.storeImage(ctx, img, prog, 2, "")
	if err != nil {
		return nil, err
	}
	im.Names, im.Digests = names, digests
	im.Added = time.Now().UTC()
	if err := s.addImage(im); err != nil {
		return nil, err
	}
	for _, n := range names {
		prog.line("Loaded image: " + n)
	}
	if len(names) == 0 {
		prog.line("Loaded image ID: " + im.ID)
	}
	return s.Get(im.ID)
}

// ImportOptions set the config of an imported image.
type ImportOptions struct {
	Changes  []string  // Dockerfile-like: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME
	Platform string    // "" = linux/host arch
	Progress io.Writer // nil = silent
}

// Import makes a one-layer image named ref from a rootfs tarball (plain,
// gzip or zstd), like `docker import`.
func (s *Store) Import(ctx context.Context, tarPath, ref string, opts ImportOptions) (*Image, error) {
	n, err := NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	if _, err := s.parseTagOnly(ref); err != nil {
		return nil, err
	}
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(tarPath); err != nil {
		return nil, err
	}
	if _, err := tarMembers(tarPath); err != nil {
		return nil, fmt.Errorf("import %s: %w", tarPath, err)
	}
	opener := func() (io.ReadCloser, error) {
		f, err := os.Open(tarPath)
		if err != nil {
			return nil, err
		}
		zr, err := decompress(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	layer, err := tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", tarPath, err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	if err := applyChanges(&cf.Config, opts.Changes); err != nil {
		return nil, err
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	lock, err := s.sharedStore()
	if err != nil {
		return nil, err
	}
	defer lock.release()
	prog := newProgress(opts.Progress)
	defer prog.close()
	im, err := s.storeImage(ctx, img, prog, 1, "")
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", tarPath, err)
	}
	im.Names = []string{n}
	im.Added = time.Now().UTC()
	if err := s.addImage(im); err != nil {
		return nil, err
	}
	return s.Get(im.ID)
}

func (s *Store) parseTagOnly(ref string) (name.Tag, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return name.Tag{}, err
	}
	t, ok := r.(name.Tag)
	if !ok {
		return name.Tag{}, fmt.Errorf("%q: a name:tag is needed here, not a digest", ref)
	}
	return t, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// applyChanges applies Dockerfile-like instructions to a config.
func applyChanges(c *v1.Config, changes []string) error {
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		instr, arg, _ := strings.Cut(ch, " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(instr) {
		case "CMD", "ENTRYPOINT":
			var argv []string
			if strings.HasPrefix(arg, "[") {
				if err := json.Unmarshal([]byte(arg), &argv); err != nil {
					return fmt.Errorf("change %q: bad JSON array: %w", ch, err)
				}
			} else {
				argv = []string{"/bin/sh", "-c", arg}
			}
			if strings.EqualFold(instr, "CMD") {
				c.Cmd = argv
			} else {
				c.Entrypoint = argv
			}
		case "ENV":
			k, v, ok := strings.Cut(arg, "=")
			if !ok {
				k, v, ok = strings.Cut(arg, " ")
			}
			if !ok || k == "" {
				return fmt.Errorf("change %q: want ENV KEY=value", ch)
			}
			c.Env = setEnv(c.Env, k, strings.TrimSpace(v))
		case "WORKDIR":
			c.WorkingDir = arg
		case "USER":
			c.User = arg
		case "STOPSIGNAL":
			c.StopSignal = arg
		case "EXPOSE":
			for _, p := range strings.Fields(arg) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				if c.ExposedPorts == nil {
					c.ExposedPorts = map[string]struct{}{}
				}
				c.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			for _, p := range strings.Fields(arg) {
				if c.Volumes == nil {
					c.Volumes = map[string]struct{}{}
				}
				c.Volumes[p] = struct{}{}
			}
		case "LABEL":
			k, v, ok := strings.Cut(arg, "=")
			if !ok || k == "" {
				return fmt.Errorf("change %q: want LABEL key=value", ch)
			}
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[k] = strings.Trim(v, `"`)
		default:
			return fmt.Errorf("change %q: unsupported instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL)", ch)
		}
	}
	return nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// Save writes the named images as a docker-save tarball (loadable by
// `docker load` and by Load).
func (s *Store) Save(w io.Writer, refs []string) error {
	if len(refs) == 0 {
		return errors.New("save: no images named")
	}
	m := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		im, err := s.Get(ref)
		if err != nil {
			return err
		}
		vi, err := s.v1Image(im)
		if err != nil {
			return err
		}
		var r name.Reference
		if t, err := s.parseTagOnly(ref); err == nil && (contains(im.Names, canonical(t))) {
			r = t
		} else if len(im.Names) > 0 {
			r, _ = name.NewTag(im.Names[0])
		}
		if r == nil {
			d, err := name.NewDigest("berth.invalid/untagged@" + im.Manifest)
			if err != nil {
				return err
			}
			r = d
		}
		m[r] = vi
	}
	return tarball.MultiRefWrite(m, w)
}

// v1Image presents a stored image to go-containerregistry.
func (s *Store) v1Image(im *Image) (v1.Image, error) {
	for _, d := range []string{im.ID, im.Manifest} {
		if !s.hasBlob(d) {
			return nil, fmt.Errorf("image %s: blob %s missing from the store", im.ShortID(), d)
		}
	}
	return partial.CompressedToImage(&storedImage{s: s, im: im})
}

type storedImage struct {
	s  *Store
	im *Image
}

func (si *storedImage) RawConfigFile() ([]byte, error) { return si.s.readBlob(si.im.ID) }
func (si *storedImage) MediaType() (types.MediaType, error) {
	return types.MediaType(si.im.MediaType), nil
}
func (si *storedImage) RawManifest() ([]byte, error) { return si.s.readBlob(si.im.Manifest) }
func (si *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range si.im.Layers {
		if l.Digest == h.String() {
			return &storedLayer{s: si.s, l: l}, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer %s", si.im.ShortID(), h)
}

type storedLayer struct {
	s *Store
	l Layer
}

func (sl *storedLayer) Digest() (v1.Hash, error) { return v1.NewHash(sl.l.Digest) }
func (sl *storedLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(sl.s.blobPath(sl.l.Digest))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", sl.l.Digest, err)
	}
	return f, nil
}
func (sl *storedLayer) Size() (int64, error) { return sl.l.Size, nil }
func (sl *storedLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(sl.l.MediaType), nil
}
