package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// PullOptions tune Pull. The zero value pulls for linux and the host
// architecture with credentials from ~/.docker/config.json and its helpers,
// silently.
type PullOptions struct {
	Platform  string            // "os/arch[/variant]"; "" = linux/host arch
	Progress  io.Writer         // where progress goes; nil = none
	Keychain  authn.Keychain    // nil = authn.DefaultKeychain
	Transport http.RoundTripper // nil = remote.DefaultTransport
	Jobs      int               // layers fetched at once; 0 = 4
}

// Retry schedule for registry requests (go-containerregistry retries
// requests; berth retries a blob whose body is cut short). Tests shorten it.
var (
	requestBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}
	blobAttempts   = 4
	blobRetryDelay = 500 * time.Millisecond
)

// Pull fetches ref (short Docker Hub names are accepted) into the store and
// returns the stored image. Layers already in the store are neither fetched
// nor unpacked again; blobs are verified before they are kept. A missing
// image gives an error wrapping ErrNotFound, a refused one ErrDenied.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithPlatform(plat),
		remote.WithRetryBackoff(requestBackoff),
		remote.WithUserAgent("berth"),
	}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, registryError(canonical(r), err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		img, err = desc.Image() // picks plat
		if err != nil {
			return nil, fmt.Errorf("%s: no image for platform %s in the manifest list: %w", canonical(r), platformString(plat.OS, plat.Architecture, plat.Variant), err)
		}
	} else if desc.MediaType.IsImage() {
		img, err = desc.Image()
		if err != nil {
			return nil, registryError(canonical(r), err)
		}
	} else {
		return nil, fmt.Errorf("%s: unsupported manifest media type %q", canonical(r), desc.MediaType)
	}
	lock, err := s.sharedStore()
	if err != nil {
		return nil, err
	}
	defer lock.release()

	prog := newProgress(opts.Progress)
	defer prog.close()
	prog.line(fmt.Sprintf("%s: pulling from %s", canonical(r), repoName(r.Context())))
	im, err := s.storeImage(ctx, img, prog, opts.Jobs, opts.Platform)
	if err != nil {
		return nil, registryError(canonical(r), err)
	}
	if _, ok := r.(name.Tag); ok {
		im.Names = []string{canonical(r)}
	}
	im.Digests = []string{repoName(r.Context()) + "@" + im.Manifest}
	im.Added = time.Now().UTC()
	if err := s.addImage(im); err != nil {
		return nil, err
	}
	prog.line(fmt.Sprintf("Digest: %s", im.Manifest))
	if prog.downloaded() {
		prog.line(fmt.Sprintf("Status: Downloaded newer image for %s", canonical(r)))
	} else {
		prog.line(fmt.Sprintf("Status: Image is up to date for %s", canonical(r)))
	}
	return s.Get(im.ID)
}

// storeImage stores img's blobs and unpacks its layers; the caller holds the
// store lock shared and records the returned image.
//
// A non-empty platform must match the image config's (a single-platform
// image pulled for another platform is refused before any layer is
// fetched).
func (s *Store) storeImage(ctx context.Context, img v1.Image, prog *progress, jobs int, platform string) (*Image, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	mdgst, err := img.Digest()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytesReader(rawManifest))
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	// The config is fetched as a blob (afresh on each attempt: an image's
	// RawConfigFile may cache a short read) and verified like one.
	cfgDigest := m.Config.Digest.String()
	err = retryTransient(ctx, func() error {
		if l, err := img.LayerByDigest(m.Config.Digest); err == nil {
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			return verifyError(s.putBlob(cfgDigest, m.Config.Size, rc))
		}
		raw, err := img.RawConfigFile()
		if err != nil {
			return verifyError(err)
		}
		return s.putBlob(cfgDigest, m.Config.Size, bytesReader(raw))
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rawConfig, err := s.readBlob(cfgDigest)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytesReader(rawConfig))
	if err != nil {
		return nil, fmt.Errorf("parse image config: %w", err)
	}
	if have := platformString(cf.OS, cf.Architecture, cf.Variant); platform != "" && !platformMatches(have, platform) {
		return nil, fmt.Errorf("the image is for %s, not the requested %s", have, platform)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image config lists %d layers, manifest %d", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	if len(m.Layers) == 0 {
		return nil, errors.New("image has no layers")
	}
	im := &Image{
		ID:        m.Config.Digest.String(),
		Manifest:  mdgst.String(),
		MediaType: string(mt),
		Platform:  platformString(cf.OS, cf.Architecture, cf.Variant),
		Created:   cf.Created.Time.UTC(),
	}
	for i, ld := range m.Layers {
		if _, err := sha256Hex(ld.Digest.String()); err != nil {
			return nil, err
		}
		if _, err := sha256Hex(cf.RootFS.DiffIDs[i].String()); err != nil {
			return nil, err
		}
		im.Layers = append(im.Layers, Layer{Digest: ld.Digest.String(), DiffID: cf.RootFS.DiffIDs[i].String(), MediaType: string(ld.MediaType), Size: ld.Size})
	}
	if jobs <= 0 {
		jobs = 4
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, ly := range im.Layers {
		if s.hasLayer(ly.DiffID) && s.hasBlob(ly.Digest) {
			prog.bar(shortHex(ly.Digest, 12), ly.Size, "Already exists")
			continue
		}
		bar := prog.bar(shortHex(ly.Digest, 12), ly.Size, "Pulling fs layer")
		g.Go(func() error {
			if !s.hasBlob(ly.Digest) {
				bar.status("Waiting")
				if err := s.fetchBlob(gctx, img, ly, bar); err != nil {
					bar.done("Failed")
					return fmt.Errorf("layer %s: %w", ly.Digest, err)
				}
			}
			bar.status("Extracting")
			if err := s.unpackLayer(gctx, ly.Digest, ly.DiffID); err != nil {
				bar.done("Failed")
				return err
			}
			bar.done("Pull complete")
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := s.putBlob(im.Manifest, int64(len(rawManifest)), bytesReader(rawManifest)); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return im, nil
}

// fetchBlob downloads one layer blob, retrying when the body is cut short.
// A digest mismatch is final: the bytes are refused and nothing is kept.
func (s *Store) fetchBlob(ctx context.Context, img v1.Image, ly Layer, bar *bar) error {
	h, err := v1.NewHash(ly.Digest)
	if err != nil {
		return err
	}
	var lastErr error
	for attempt := 0; attempt < blobAttempts; attempt++ {
		if attempt > 0 {
			bar.status(fmt.Sprintf("Retrying (%d)", attempt))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(blobRetryDelay * time.Duration(attempt)):
			}
		}
		l, err := img.LayerByDigest(h)
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			lastErr = err
			if isPermanent(err) {
				return err
			}
			continue
		}
		bar.status(bar.p.verb)
		err = verifyError(s.putBlob(ly.Digest, ly.Size, &countingReader{r: rc, bar: bar}))
		rc.Close()
		if err == nil {
			return nil
		}
		lastErr = err
		if errors.Is(err, ErrDigest) || isPermanent(err) || ctx.Err() != nil {
			return err
		}
		bar.reset()
	}
	return lastErr
}

// verifyError marks go-containerregistry's own digest and size checks
// (whose error type is internal to it) with ErrDigest.
func verifyError(err error) error {
	if err != nil && !errors.Is(err, ErrDigest) && strings.Contains(err.Error(), "error verifying") {
		return fmt.Errorf("%w: %v", ErrDigest, err)
	}
	return err
}

// retryTransient runs fn until it succeeds, fails for good (digest
// mismatch, permanent registry error, cancelled context) or runs out of
// attempts.
func retryTransient(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < blobAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(blobRetryDelay * time.Duration(attempt)):
			}
		}
		err = fn()
		if err == nil || errors.Is(err, ErrDigest) || isPermanent(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func isPermanent(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return !te.Temporary()
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// registryError gives registry failures their sentinel: ErrNotFound for a
// missing repository, tag or manifest, ErrDenied for a refused pull.
func registryError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return fmt.Errorf("%s: %w: %v", ref, ErrNotFound, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%s: %w (repository does not exist or may require 'docker login'): %v", ref, ErrDenied, err)
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w: %v", ref, ErrNotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w (repository does not exist or may require 'docker login'): %v", ref, ErrDenied, err)
		}
	}
	return fmt.Errorf("%s: %w", ref, err)
}

type countingReader struct {
	r   io.Reader
	bar *bar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.add(int64(n))
	return n, err
}

// ctxReader stops a long copy (a layer unpack) once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
