package watch

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// lookupUser resolves a Docker-style user ("name", "uid", "name:group",
// "uid:gid") against the image's passwd and group files (either may be
// nil) to the uid and gid that own synced files. A numeric user missing
// from passwd keeps gid 0, as Docker does.
func lookupUser(user string, passwd, group io.Reader) (uid, gid int, err error) {
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	if userPart == "" {
		userPart = "0"
	}
	found := false
	if n, perr := strconv.ParseUint(userPart, 10, 32); perr == nil {
		uid = int(n)
		for _, f := range colonLines(passwd) {
			if len(f) >= 4 && f[2] == userPart {
				if g, err := strconv.Atoi(f[3]); err == nil {
					gid, found = g, true
					break
				}
			}
		}
	} else {
		for _, f := range colonLines(passwd) {
			if len(f) >= 4 && f[0] == userPart {
				u, err1 := strconv.Atoi(f[2])
				g, err2 := strconv.Atoi(f[3])
				if err1 == nil && err2 == nil {
					uid, gid, found = u, g, true
					break
				}
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("user %q: no such user in the image's /etc/passwd", userPart)
		}
	}
	if hasGroup && groupPart != "" {
		if n, perr := strconv.ParseUint(groupPart, 10, 32); perr == nil {
			return uid, int(n), nil
		}
		for _, f := range colonLines(group) {
			if len(f) >= 3 && f[0] == groupPart {
				if g, err := strconv.Atoi(f[2]); err == nil {
					return uid, g, nil
				}
			}
		}
		return 0, 0, fmt.Errorf("group %q: no such group in the image's /etc/group", groupPart)
	}
	return uid, gid, nil
}

// colonLines splits the non-comment lines of a passwd/group file.
func colonLines(r io.Reader) [][]string {
	if r == nil {
		return nil
	}
	var out [][]string
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
