// Package imagetest makes test images from the host's static busybox
// (Debian's busybox-static), laid out as examples/images/make-busybox.sh
// lays out the demo's. It is for tests only.
package imagetest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/supervisor/image"
)

// Busybox is the host binary the images are made from.
const Busybox = "/bin/busybox"

// BusyboxTar writes a rootfs tarball into a test temp dir and returns its
// path: busybox with one symlink per applet in /bin, the usual top-level
// directories (/tmp sticky), users root, app (1000) and nobody (65534),
// and the extra files (path in the image -> content, mode 0644). A host
// without busybox-static fails the test: CI installs it.
func BusyboxTar(t testing.TB, extra map[string]string) string {
	t.Helper()
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatalf("%s is needed (apt-get install busybox-static): %v", Busybox, err)
	}
	list, err := exec.Command(Busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(h *tar.Header, data []byte) {
		h.ModTime, h.Size = now, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	dirs := map[string]bool{}
	dir := func(d string, mode int64) {
		if !dirs[d] {
			dirs[d] = true
			add(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}, nil)
		}
	}
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "root", "var", "home", "srv", "usr", "usr/bin"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, bb)
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		if a := strings.TrimSpace(sc.Text()); a != "" && a != "busybox" {
			add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
	}
	for name, content := range extra {
		files[strings.TrimPrefix(name, "/")] = content
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var parents []string // of extra files, outermost first
		for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			dir(d, 0o755)
		}
		add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, []byte(files[name]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ImportBusybox imports BusyboxTar(t, extra) into st as busybox:latest,
// with CMD ["sh"] and the config changes given.
func ImportBusybox(t testing.TB, st *image.Store, extra map[string]string, changes ...string) {
	t.Helper()
	changes = append([]string{`CMD ["sh"]`}, changes...)
	if _, err := st.Import(context.Background(), BusyboxTar(t, extra), "busybox:latest", image.ImportOptions{Changes: changes}); err != nil {
		t.Fatal(err)
	}
}
