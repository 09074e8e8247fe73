package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tarListing renders a tar as "name type [size] [->link]" lines.
func tarListing(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%s %c", h.Name, h.Typeflag)
		switch h.Typeflag {
		case tar.TypeReg:
			body, _ := io.ReadAll(tr)
			line += " " + string(body)
		case tar.TypeSymlink, tar.TypeLink:
			line += " -> " + h.Linkname
		}
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				line += " " + strings.TrimPrefix(k, "SCHILY.xattr.") + "=" + v
			}
		}
		out = append(out, line)
	}
	return out
}

func TestWriteDiffFiles(t *testing.T) {
	up := t.TempDir()
	writeFiles(t, up, map[string]string{"etc/app.conf": "conf", "b": "bee"})
	os.Symlink("app.conf", filepath.Join(up, "etc/link"))
	os.Link(filepath.Join(up, "b"), filepath.Join(up, "etc/hard"))
	var buf bytes.Buffer
	n, err := writeDiff(up, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got := tarListing(t, buf.Bytes())
	want := []string{"b 0 bee", "etc/ 5", "etc/app.conf 0 conf", "etc/hard 1 -> b", "etc/link 2 -> app.conf"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || n != len(want) {
		t.Errorf("diff (%d entries):\n%s\nwant\n%s", n, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	buf.Reset()
	if n, err := writeDiff(t.TempDir(), &buf); err != nil || n != 0 {
		t.Errorf("empty upper: %d entries, %v", n, err)
	}
}

func TestWriteDiffWhiteouts(t *testing.T) {
	requirePrivileged(t)
	up := t.TempDir()
	writeFiles(t, up, map[string]string{"keep/file": "x"})
	if err := unix.Mknod(filepath.Join(up, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(up, "keep/old"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(up, "opaque"), 0o755)
	if err := unix.Setxattr(filepath.Join(up, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("trusted xattrs on %s (root, tmpfs or ext4 have them): %v", up, err)
	}
	unix.Setxattr(filepath.Join(up, "keep"), "trusted.overlay.impure", []byte("y"), 0)
	unix.Setxattr(filepath.Join(up, "keep/file"), "user.note", []byte("hi"), 0)
	var buf bytes.Buffer
	if _, err := writeDiff(up, &buf); err != nil {
		t.Fatal(err)
	}
	got := tarListing(t, buf.Bytes())
	sort.Strings(got)
	want := []string{".wh.gone 0 ", "keep/ 5", "keep/.wh.old 0 ", "keep/file 0 x", "opaque/ 5", "opaque/.wh..wh..opq 0 "}
	// user.* xattrs may be unsupported on the test's filesystem.
	for i, g := range got {
		got[i] = strings.TrimSuffix(g, " user.note=hi")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWriteDiffRefusesRedirects(t *testing.T) {
	requirePrivileged(t)
	up := t.TempDir()
	os.Mkdir(filepath.Join(up, "moved"), 0o755)
	if err := unix.Setxattr(filepath.Join(up, "moved"), "trusted.overlay.redirect", []byte("/orig"), 0); err != nil {
		t.Fatalf("trusted xattrs (root, tmpfs or ext4 have them): %v", err)
	}
	if _, err := writeDiff(up, io.Discard); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("err = %v", err)
	}
}
