package runtime

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// execUser is the resolved identity of a container process.
type execUser struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Home     string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out
}

func parseGroup(r io.Reader) []groupEntry {
	var out []groupEntry
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out
}

// resolveUser resolves a compose/Docker style user string ("name",
// "uid", "name:group", "uid:gid", ...) against the image's passwd and
// group files (either may be nil). Supplementary groups are those that
// list the user as a member, as Docker does, unless a group was given.
func resolveUser(spec string, passwd, group io.Reader) (execUser, error) {
	var users []passwdEntry
	var groups []groupEntry
	if passwd != nil {
		users = parsePasswd(passwd)
	}
	if group != nil {
		groups = parseGroup(group)
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	u := execUser{Home: "/"}
	var name string
	found := false
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, e := range users {
			if e.uid == u.UID {
				u.GID, u.Home, name, found = e.gid, e.home, e.name, true
				break
			}
		}
	} else {
		for _, e := range users {
			if e.name == userPart {
				u.UID, u.GID, u.Home, name, found = e.uid, e.gid, e.home, e.name, true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("user %q: no such user in the image's /etc/passwd", userPart)
		}
	}
	if hasGroup && groupPart != "" {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			ok := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, ok = g.gid, true
					break
				}
			}
			if !ok {
				return u, fmt.Errorf("group %q: no such group in the image's /etc/group", groupPart)
			}
		}
		return u, nil
	}
	if found {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != u.GID {
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	if u.Home == "" {
		u.Home = "/"
	}
	return u, nil
}
