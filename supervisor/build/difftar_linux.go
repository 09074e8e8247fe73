package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The OCI layer forms of overlayfs's deletions.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// writeDiff writes the changes held by an overlayfs upper directory as an
// OCI layer tar to w and reports how many entries it wrote (0: the step
// changed nothing). A 0/0 character device (overlayfs's whiteout) becomes
// an empty ".wh.NAME" file; a directory marked opaque gets a
// ".wh..wh..opq" entry after its own; overlayfs's private trusted.overlay.*
// xattrs are dropped. Entries come in lexical order with parents first;
// files with several links in the upper dir become tar hardlinks.
func writeDiff(upper string, w io.Writer) (int, error) {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	n := 0
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			dir, base := filepath.Split(rel)
			n++
			return tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: dir + whiteoutPrefix + base, Mode: 0o644,
				ModTime: fi.ModTime(), Format: tar.FormatPAX,
			})
		}
		var link string
		if fi.Mode().IsDir() {
			link = ""
		} else if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		xattrs, opaque, err := readXattrs(p)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for k, v := range xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
			} else {
				links[key] = rel
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n++
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		if fi.IsDir() && opaque {
			n++
			return tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: rel + "/" + whiteoutOpaque, Mode: 0o644,
				ModTime: fi.ModTime(), Format: tar.FormatPAX,
			})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, tw.Close()
}

// readXattrs returns a file's extended attributes except overlayfs's own,
// and whether it is marked opaque.
func readXattrs(p string) (map[string]string, bool, error) {
	buf := make([]byte, 4096)
	sz, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		if sz, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, sz)
			sz, err = unix.Llistxattr(p, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, os.NewSyscallError("llistxattr", err)
	}
	var out map[string]string
	opaque := false
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if name == "" {
			continue
		}
		if strings.HasPrefix(name, "trusted.overlay.") {
			switch name {
			case "trusted.overlay.redirect", "trusted.overlay.metacopy":
				// A renamed directory or a metadata-only copy-up: the
				// upper entry does not hold the content, so a diff
				// from it would lose data.
				return nil, false, fmt.Errorf("overlayfs %s is set (redirect_dir or metacopy is on for this kernel's overlay module); berth cannot take a layer from it: load overlay with redirect_dir=off metacopy=off", strings.TrimPrefix(name, "trusted.overlay."))
			}
			if name == opaqueXattr {
				v := make([]byte, 8)
				n, err := unix.Lgetxattr(p, name, v)
				if err == nil && string(v[:n]) == "y" {
					opaque = true
				}
			}
			continue
		}
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, false, os.NewSyscallError("lgetxattr", err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(v[:n])
	}
	return out, opaque, nil
}
