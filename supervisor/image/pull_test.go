package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func randomImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pull(t testing.TB, s *Store, ref string, opts PullOptions) *Image {
	t.Helper()
	if opts.Keychain == nil {
		opts.Keychain = anon
	}
	im, err := s.Pull(context.Background(), ref, opts)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return im
}

// assertLayersUnpacked checks every layer of img is stored and holds what
// the image's layer tar holds (names and contents of regular files).
func assertLayersUnpacked(t testing.TB, s *Store, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.DiffID()
		dir := s.layerPath(d.String())
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			var want bytes.Buffer
			want.ReadFrom(tr)
			p := filepath.Join(dir, cleanRel(h.Name))
			if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != os.FileMode(h.Mode).Perm() {
				t.Fatalf("layer %s: %s: %v, want mode %o", d, h.Name, fi, h.Mode)
			}
			if os.Geteuid() != 0 {
				os.Chmod(p, 0o600) // random layers' files have mode 0
			}
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("layer %s: %s differs from the image (%v)", d, h.Name, err)
			}
		}
		rc.Close()
	}
}

func TestPullRandomImage(t *testing.T) {
	reg := newTestRegistry(t, nil)
	img := randomImage(t, 4096, 3)
	reg.push(t, reg.ref("test/app:1.0"), img)
	s := openTestStore(t)
	var out bytes.Buffer
	im := pull(t, s, reg.ref("test/app:1.0"), PullOptions{Progress: &out})
	wantID, _ := img.ConfigName()
	wantM, _ := img.Digest()
	if im.ID != wantID.String() || im.Manifest != wantM.String() {
		t.Fatalf("pulled %s (manifest %s), want %s (%s)", im.ID, im.Manifest, wantID, wantM)
	}
	if want := reg.host + "/test/app:1.0"; len(im.Names) != 1 || im.Names[0] != want {
		t.Fatalf("names %v, want [%s]", im.Names, want)
	}
	if len(im.Layers) != 3 {
		t.Fatalf("%d layers", len(im.Layers))
	}
	assertLayersUnpacked(t, s, img)
	mustCheck(t, s)
	if !strings.Contains(out.String(), "Pull complete") || !strings.Contains(out.String(), "Digest: "+wantM.String()) {
		t.Fatalf("progress output:\n%s", out.String())
	}
	// By digest, and by ID prefix, it is the same image.
	byDigest := pull(t, s, reg.ref("test/app@"+wantM.String()), PullOptions{})
	if byDigest.ID != im.ID {
		t.Fatalf("by digest: %s", byDigest.ID)
	}
	for _, ref := range []string{im.ID, im.ShortID(), reg.ref("test/app:1.0"), reg.ref("test/app@" + wantM.String())} {
		if got, err := s.Get(ref); err != nil || got.ID != im.ID {
			t.Fatalf("Get(%s) = %v, %v", ref, got, err)
		}
	}
	// A second pull fetches nothing.
	out.Reset()
	pull(t, s, reg.ref("test/app:1.0"), PullOptions{Progress: &out})
	if strings.Contains(out.String(), "Downloading") || strings.Count(out.String(), "Already exists") != 3 {
		t.Fatalf("second pull output:\n%s", out.String())
	}
}

func TestPullNotFoundAndDenied(t *testing.T) {
	reg := newTestRegistry(t, nil)
	s := openTestStore(t)
	_, err := s.Pull(context.Background(), reg.ref("no/such:image"), PullOptions{Keychain: anon})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing image: %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "image not found") {
		t.Fatalf("error text %q", err)
	}
	reg.push(t, reg.ref("has/tag:1"), randomImage(t, 100, 1))
	if _, err := s.Pull(context.Background(), reg.ref("has/tag:2"), PullOptions{Keychain: anon}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing tag: %v, want ErrNotFound", err)
	}

	locked := newTestRegistry(t, requireBasicAuth("alice", "secret", nil))
	_, err = s.Pull(context.Background(), locked.ref("private/app:1"), PullOptions{Keychain: anon})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("denied pull: %v, want ErrDenied", err)
	}
	if _, err := s.Pull(context.Background(), "bad//ref", PullOptions{Keychain: anon}); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("bad reference: %v", err)
	}
	if _, err := s.Pull(context.Background(), reg.ref("has/tag:1"), PullOptions{Keychain: anon, Platform: "linux"}); err == nil {
		t.Fatalf("bad platform accepted")
	}
	mustCheck(t, s)
}

// requireBasicAuth refuses requests without the right Basic credentials
// and records each Authorization header it sees into seen (if not nil).
func requireBasicAuth(user, pass string, seen *[]string) func(http.Handler) http.Handler {
	var mu sync.Mutex
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if seen != nil {
				mu.Lock()
				*seen = append(*seen, r.Header.Get("Authorization"))
				mu.Unlock()
			}
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type staticKeychain struct {
	host string
	cfg  authn.AuthConfig
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return authn.FromConfig(k.cfg), nil
	}
	return authn.Anonymous, nil
}

func TestPullMultiPlatform(t *testing.T) {
	reg := newTestRegistry(t, nil)
	amd, arm := randomImage(t, 512, 1), randomImage(t, 512, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	r, _ := ParseReference(reg.ref("multi/arch:latest"))
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t)
	cases := map[string]v1.Image{"linux/amd64": amd, "linux/arm64": arm, "linux/arm64/v8": arm}
	for plat, want := range cases {
		im := pull(t, s, reg.ref("multi/arch:latest"), PullOptions{Platform: plat})
		wantID, _ := want.ConfigName()
		if im.ID != wantID.String() {
			t.Errorf("platform %s: got %s, want %s", plat, im.ID, wantID)
		}
	}
	if _, err := s.Pull(context.Background(), reg.ref("multi/arch:latest"), PullOptions{Keychain: anon, Platform: "linux/s390x"}); err == nil || !strings.Contains(err.Error(), "linux/s390x") {
		t.Fatalf("missing platform: %v", err)
	}
	mustCheck(t, s)
}

func TestPullSharedLayersStoredOnce(t *testing.T) {
	reg := newTestRegistry(t, nil)
	base := randomImage(t, 2048, 3)
	extra, _ := random.Layer(2048, types.DockerLayer)
	derived, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	reg.push(t, reg.ref("base:1"), base)
	reg.push(t, reg.ref("derived:1"), derived)
	s := openTestStore(t)
	pull(t, s, reg.ref("base:1"), PullOptions{})
	var out bytes.Buffer
	d := pull(t, s, reg.ref("derived:1"), PullOptions{Progress: &out})
	if n := strings.Count(out.String(), "Already exists"); n != 3 {
		t.Fatalf("derived pull reused %d layers, want 3:\n%s", n, out.String())
	}
	layers, _ := os.ReadDir(filepath.Join(s.Root(), "layers"))
	if len(layers) != 4 {
		t.Fatalf("%d layer directories for 3 shared + 1 own layer, want 4", len(layers))
	}
	// Removing the base keeps the shared layers for derived.
	if _, err := s.Remove(reg.ref("base:1")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Layers != 0 {
		t.Fatalf("prune removed %d layers still used by derived", rep.Layers)
	}
	mustCheck(t, s)
	assertLayersUnpacked(t, s, derived)
	if _, err := s.Remove(reg.ref("derived:1")); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Layers != 4 || rep.Blobs < 4+2 {
		t.Fatalf("prune after removing both: %+v", rep)
	}
	if _, err := s.Get(d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed image still there: %v", err)
	}
	mustCheck(t, s)
}

func TestPullManyLayers(t *testing.T) {
	reg := newTestRegistry(t, nil)
	img := randomImage(t, 256, 130)
	reg.push(t, reg.ref("deep:130"), img)
	s := openTestStore(t)
	im := pull(t, s, reg.ref("deep:130"), PullOptions{})
	if len(im.Layers) != 130 {
		t.Fatalf("%d layers", len(im.Layers))
	}
	mustCheck(t, s)
}

// faultMiddleware misbehaves on blob GETs as told.
type faultMiddleware struct {
	mode     string // "drop", "500", "corrupt", "slow"
	count    atomic.Int32
	failures int32 // how many requests misbehave (drop, 500)
}

func (f *faultMiddleware) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			next.ServeHTTP(w, r)
			return
		}
		n := f.count.Add(1)
		switch f.mode {
		case "500":
			if n <= f.failures {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
		case "drop":
			if n <= f.failures {
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.WriteHeader(http.StatusOK)
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // drops the connection mid-body
			}
		case "corrupt":
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		case "slow":
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(rec.Code)
			for len(body) > 0 {
				n := min(len(body), 16<<10)
				w.Write(body[:n])
				w.(http.Flusher).Flush()
				body = body[n:]
				time.Sleep(5 * time.Millisecond)
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestPullFaults(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		failures int32
		wantErr  error
	}{
		{"drop", 2, nil},
		{"500", 2, nil},
		{"slow", 0, nil},
		{"corrupt", 0, ErrDigest},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			fm := &faultMiddleware{mode: tc.mode, failures: tc.failures}
			reg := newTestRegistry(t, fm.wrap)
			img := randomImage(t, 64<<10, 2)
			reg.push(t, reg.ref("faulty:1"), img)
			fm.count.Store(0)
			s := openTestStore(t)
			im, err := s.Pull(context.Background(), reg.ref("faulty:1"), PullOptions{Keychain: anon, Jobs: 1})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("pull: %v, want %v", err, tc.wantErr)
				}
				// Nothing of the refused image is trusted or even kept.
				if ims, _ := s.List(); len(ims) != 0 {
					t.Fatalf("refused image listed: %v", ims)
				}
				layers, _ := os.ReadDir(filepath.Join(s.Root(), "layers"))
				blobs, _ := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256"))
				for _, b := range blobs {
					ls, _ := img.Layers()
					for _, l := range ls {
						if d, _ := l.Digest(); d.Hex == b.Name() {
							t.Fatalf("corrupt layer blob %s stored", b.Name())
						}
					}
				}
				if len(layers) != 0 {
					t.Fatalf("layers stored from corrupt blobs: %d", len(layers))
				}
				mustCheck(t, s)
				return
			}
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if fm.count.Load() <= tc.failures {
				t.Fatalf("fault middleware saw %d blob requests", fm.count.Load())
			}
			wantID, _ := img.ConfigName()
			if im.ID != wantID.String() {
				t.Fatalf("ID %s", im.ID)
			}
			assertLayersUnpacked(t, s, img)
			mustCheck(t, s)
		})
	}
}

// TestPullRedirectDropsCredentials: blobs redirect from registry A (which
// wants Basic credentials) to host B, which must not see them.
func TestPullRedirectDropsCredentials(t *testing.T) {
	var regHandler http.Handler
	var seenB []string
	var muB sync.Mutex
	hostB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		muB.Lock()
		seenB = append(seenB, r.Header.Get("Authorization"))
		muB.Unlock()
		regHandler.ServeHTTP(w, r) // serve the blob straight from A's registry
	}))
	t.Cleanup(hostB.Close)
	// B is reached by another name (localhost) on another port.
	bURL := strings.Replace(hostB.URL, "127.0.0.1", "localhost", 1)
	var seenA []string
	auth := requireBasicAuth("alice", "secret", &seenA)
	reg := newTestRegistry(t, func(next http.Handler) http.Handler {
		regHandler = next
		authed := auth(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && r.URL.Query().Get("direct") == "" {
				if _, p, ok := r.BasicAuth(); ok && p == "secret" {
					http.Redirect(w, r, bURL+r.URL.Path+"?direct=1", http.StatusTemporaryRedirect)
					return
				}
			}
			authed.ServeHTTP(w, r)
		})
	})
	kc := staticKeychain{host: reg.host, cfg: authn.AuthConfig{Username: "alice", Password: "secret"}}
	img := randomImage(t, 1024, 2)
	reg.push(t, reg.ref("private/app:1"), img, remote.WithAuthFromKeychain(kc))
	seenA = nil
	s := openTestStore(t)
	im := pull(t, s, reg.ref("private/app:1"), PullOptions{Keychain: kc})
	if len(im.Layers) != 2 {
		t.Fatal("layers")
	}
	muB.Lock()
	defer muB.Unlock()
	if len(seenB) < 2 {
		t.Fatalf("host B saw %d requests; the redirect was not followed", len(seenB))
	}
	for _, h := range seenB {
		if h != "" {
			t.Fatalf("credentials sent to the redirect host: %q", h)
		}
	}
	sawCreds := false
	for _, h := range seenA {
		sawCreds = sawCreds || strings.HasPrefix(h, "Basic ")
	}
	if !sawCreds {
		t.Fatalf("registry A never got credentials: %q", seenA)
	}
	assertLayersUnpacked(t, s, img)
	mustCheck(t, s)
}

func TestParseReference(t *testing.T) {
	for in, want := range map[string]string{
		"redis":                         "docker.io/library/redis:latest",
		"redis:7":                       "docker.io/library/redis:7",
		"docker.io/library/redis":       "docker.io/library/redis:latest",
		"index.docker.io/bitnami/redis": "docker.io/bitnami/redis:latest",
		"ghcr.io/a/b:c":                 "ghcr.io/a/b:c",
		"localhost:5000/x":              "localhost:5000/x:latest",
		"redis@sha256:" + strings.Repeat("a", 64): "docker.io/library/redis@sha256:" + strings.Repeat("a", 64),
	} {
		got, err := NormalizeName(in)
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"localhost:5000/x": "http", "127.0.0.1:5000/x": "http", "127.1.2.3/x": "http", "[::1]:5000/x": "http",
		"registry.example:5000/x": "https", "redis": "https",
	} {
		r, err := ParseReference(in)
		if err != nil || r.Context().Scheme() != want {
			t.Errorf("%s: scheme %v %v, want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a:b:c", "x@sha256:short", "/demo/app:1", "a//b", "a/"} {
		if _, err := NormalizeName(bad); err == nil {
			t.Errorf("NormalizeName(%q) accepted", bad)
		}
	}
}

// TestPullCompressions: zstd and uncompressed layers pull and unpack like
// gzip ones.
func TestPullCompressions(t *testing.T) {
	entries := []tarEntry{{name: "z/", typ: tar.TypeDir}, {name: "z/file", body: "zstd body"}}
	raw := makeTar(t, entries)
	zl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	plainBytes := makeTar(t, []tarEntry{{name: "p", body: "plain body"}})
	pl := static.NewLayer(plainBytes, types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, zl, pl)
	if err != nil {
		t.Fatal(err)
	}
	reg := newTestRegistry(t, nil)
	reg.push(t, reg.ref("comp:1"), img)
	s := openTestStore(t)
	im := pull(t, s, reg.ref("comp:1"), PullOptions{})
	if im.Layers[0].MediaType != string(types.OCILayerZStd) || im.Layers[1].MediaType != string(types.OCIUncompressedLayer) {
		t.Fatalf("media types %+v", im.Layers)
	}
	if got := readFile(t, filepath.Join(s.layerPath(im.Layers[0].DiffID), "z/file")); got != "zstd body" {
		t.Fatalf("zstd layer: %q", got)
	}
	if got := readFile(t, filepath.Join(s.layerPath(im.Layers[1].DiffID), "p")); got != "plain body" {
		t.Fatalf("plain layer: %q", got)
	}
	mustCheck(t, s)
}
