package image

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// childPull is the child process the kill tests start (see TestMain) and
// kill -9 part way through a pull; mode "unpack" stalls in the unpack.
// It does not return.
func childPull(mode string) {
	if mode == "unpack" {
		var mu sync.Mutex
		n := 0
		testHookUnpackEntry = func(string) {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == 20 {
				fmt.Println("UNPACKING")
				time.Sleep(time.Minute) // killed here
			}
		}
	}
	s, err := Open(os.Getenv("BERTH_IMAGE_ROOT"))
	if err == nil {
		_, err = s.Pull(context.Background(), os.Getenv("BERTH_IMAGE_REF"), PullOptions{Keychain: anon})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child pull:", err)
		os.Exit(1)
	}
	fmt.Println("DONE")
	os.Exit(0)
}

func manyFilesLayerImage(t testing.TB) ([]tarEntry, []tarEntry) {
	var a, b []tarEntry
	for i := range 200 {
		a = append(a, tarEntry{name: fmt.Sprintf("a/%03d", i), body: strings.Repeat("a", i*100)})
		b = append(b, tarEntry{name: fmt.Sprintf("b/%03d", i), body: strings.Repeat("b", i*100)})
	}
	return a, b
}

func TestKillDuringPullAndUnpack(t *testing.T) {
	for _, point := range []string{"download", "unpack"} {
		t.Run(point, func(t *testing.T) {
			// During "download" the registry sends half of a blob and then
			// stalls until the child is killed.
			stalled := make(chan struct{})
			var once sync.Once
			ea, eb := manyFilesLayerImage(t)
			la, lb := tarLayer(t, ea), tarLayer(t, eb)
			bigDigest, _ := lb.Digest()
			reg := newTestRegistry(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if point == "download" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, bigDigest.String()) {
						stall := false
						once.Do(func() { stall = true })
						if stall {
							rec := httptest.NewRecorder()
							next.ServeHTTP(rec, r)
							body := rec.Body.Bytes()
							w.Header().Set("Content-Length", fmt.Sprint(len(body)))
							w.WriteHeader(http.StatusOK)
							w.Write(body[:len(body)/2])
							w.(http.Flusher).Flush()
							close(stalled)
							<-r.Context().Done()
							return
						}
					}
					next.ServeHTTP(w, r)
				})
			})
			img, err := mutate.AppendLayers(empty.Image, la, lb)
			if err != nil {
				t.Fatal(err)
			}
			privileged := os.Getenv("BERTH_PRIVILEGED") == "1"
			if privileged {
				// On top, a shell to show the re-pulled image runs.
				if img, err = mutate.AppendLayers(img, tarLayer(t, busyboxEntries(t))); err != nil {
					t.Fatal(err)
				}
			}
			ref := reg.ref("killme:1")
			reg.push(t, ref, img)
			root := filepath.Join(t.TempDir(), "images")

			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "BERTH_IMAGE_CHILD="+point, "BERTH_IMAGE_ROOT="+root, "BERTH_IMAGE_REF="+ref)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			reached := false
			timeout := time.After(60 * time.Second)
			for !reached {
				select {
				case <-stalled:
					reached = true
				case l, ok := <-lines:
					if !ok {
						t.Fatal("child exited before the kill point")
					}
					if l == "DONE" {
						t.Fatal("child finished before the kill point")
					}
					reached = l == "UNPACKING"
				case <-timeout:
					t.Fatal("child never reached the kill point")
				}
			}
			// Mid-work means something is being written in tmp/: wait for
			// the child to get there (it has the blob's first half).
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) > 0 {
					break
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range lines {
				}
			}()
			cmd.Wait()

			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			// Killed: the image is not there, nothing trusted is broken, and
			// the half-done work sits only in tmp/.
			if _, err := s.Get(ref); err == nil {
				t.Fatal("image recorded by a killed pull")
			}
			mustCheck(t, s)
			if len(s.tmpEntries()) == 0 {
				t.Fatal("the killed pull left nothing in tmp/: the kill point was not mid-work")
			}
			lbDiff, _ := lb.DiffID()
			if s.hasLayer(lbDiff.String()) {
				t.Fatal("the interrupted layer is marked complete")
			}
			// Pull again: complete, clean, tmp emptied.
			im := pull(t, s, ref, PullOptions{})
			mustCheck(t, s)
			if left := s.tmpEntries(); len(left) != 0 {
				t.Fatalf("tmp/ not cleaned: %v", left)
			}
			assertLayersUnpacked(t, s, img)
			if privileged {
				rootfs, _ := prepare(t, s, containerID(t, "killed"), im)
				if got := runIn(t, rootfs, "cat /a/* /b/* | wc -c"); strings.TrimSpace(got) != "3980000" {
					t.Fatalf("the re-pulled image's files hold %s bytes, want 3980000", got)
				}
			}
		})
	}
}
