package image

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestPullDockerConfigCredentials: with no keychain given, credentials come
// from $DOCKER_CONFIG/config.json, both inline auths and a credential
// helper.
func TestPullDockerConfigCredentials(t *testing.T) {
	var seen []string
	reg := newTestRegistry(t, requireBasicAuth("alice", "secret", &seen))
	kc := staticKeychain{host: reg.host}
	kc.cfg.Username, kc.cfg.Password = "alice", "secret"
	img := randomImage(t, 256, 1)
	reg.push(t, reg.ref("private/app:1"), img, remoteAuth(kc))

	t.Run("auths", func(t *testing.T) {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte("alice:secret"))
		writeFile(t, filepath.Join(dir, "config.json"), fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.host, auth))
		t.Setenv("DOCKER_CONFIG", dir)
		s := openTestStore(t)
		if _, err := s.Pull(context.Background(), reg.ref("private/app:1"), PullOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("credential helper", func(t *testing.T) {
		dir, bin := t.TempDir(), t.TempDir()
		writeFile(t, filepath.Join(dir, "config.json"), fmt.Sprintf(`{"credHelpers":{%q:"berthtest"}}`, reg.host))
		helper := "#!/bin/sh\nread server\n[ \"$1\" = get ] && echo '{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"secret\"}'\n"
		writeFile(t, filepath.Join(bin, "docker-credential-berthtest"), helper)
		os.Chmod(filepath.Join(bin, "docker-credential-berthtest"), 0o755)
		t.Setenv("DOCKER_CONFIG", dir)
		t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		s := openTestStore(t)
		if _, err := s.Pull(context.Background(), reg.ref("private/app:1"), PullOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte("alice:wrong"))
		writeFile(t, filepath.Join(dir, "config.json"), fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.host, auth))
		t.Setenv("DOCKER_CONFIG", dir)
		s := openTestStore(t)
		if _, err := s.Pull(context.Background(), reg.ref("private/app:1"), PullOptions{}); err == nil {
			t.Fatal("pull with wrong credentials succeeded")
		}
	})
}

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentStores: several Store values on one root (as several berth
// processes would be) pull overlapping images and prune at the same time;
// the store stays consistent.
func TestConcurrentStores(t *testing.T) {
	reg := newTestRegistry(t, nil)
	base := randomImage(t, 32<<10, 4)
	reg.push(t, reg.ref("c:base"), base)
	for i := range 3 {
		reg.push(t, reg.ref(fmt.Sprintf("c:%d", i)), appendRandomLayer(t, base))
	}
	root := filepath.Join(t.TempDir(), "images")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root)
			if err != nil {
				errs <- err
				return
			}
			ref := reg.ref(fmt.Sprintf("c:%d", i%3))
			if i == 5 {
				ref = reg.ref("c:base")
			}
			if _, err := s.Pull(context.Background(), ref, PullOptions{Keychain: anon}); err != nil {
				errs <- err
			}
			if i%2 == 0 {
				if _, err := s.Prune(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, _ := Open(root)
	mustCheck(t, s)
	ims, _ := s.List()
	if len(ims) != 4 {
		t.Fatalf("%d images, want 4", len(ims))
	}
	for _, im := range ims {
		for _, l := range im.Layers {
			if !s.hasLayer(l.DiffID) {
				t.Fatalf("layer %s missing", l.DiffID)
			}
		}
	}
	layers, _ := os.ReadDir(filepath.Join(root, "layers"))
	if len(layers) != 4+3 {
		t.Fatalf("%d layer dirs, want 7 (4 shared + 3 own)", len(layers))
	}
}
