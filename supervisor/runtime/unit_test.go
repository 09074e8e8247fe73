package runtime

import (
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	st, err := parseProcStat([]byte("42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615\n"))
	if err != nil || st.State != 'S' || st.PPid != 1 || st.StartTime != 123456 {
		t.Fatalf("%+v %v", st, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestResolveUser(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# comment\nbroken\n"
	group := "root:x:0:\napp:x:1000:\nextra:x:2000:other,app\nweb:x:3000:\n"
	for _, tc := range []struct {
		in   string
		uid  uint32
		gid  uint32
		grps string
		home string
		err  bool
	}{
		{"", 0, 0, "", "/root", false},
		{"app", 1000, 1000, "2000", "/home/app", false},
		{"1000", 1000, 1000, "2000", "/home/app", false},
		{"app:web", 1000, 3000, "", "/home/app", false},
		{"app:42", 1000, 42, "", "/home/app", false},
		{"4242", 4242, 0, "", "/", false},
		{"4242:4343", 4242, 4343, "", "/", false},
		{"ghost", 0, 0, "", "", true},
		{"app:ghosts", 0, 0, "", "", true},
	} {
		u, err := resolveUser(tc.in, strings.NewReader(passwd), strings.NewReader(group))
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		var g []string
		for _, x := range u.Groups {
			g = append(g, string(rune('0'+x/1000))+"000")
		}
		if err != nil || u.UID != tc.uid || u.GID != tc.gid || strings.Join(g, ",") != tc.grps || u.Home != tc.home {
			t.Errorf("%q: %+v %v", tc.in, u, err)
		}
	}
}

func TestCapMask(t *testing.T) {
	m, err := capMask([]string{"CAP_CHOWN", "cap_kill", "CAP_CHECKPOINT_RESTORE"}, 39)
	if err != nil || m != 1|1<<5 {
		t.Fatalf("%x %v", m, err)
	}
	if _, err := capMask([]string{"CAP_NOPE"}, 40); err == nil {
		t.Fatal("unknown capability accepted")
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "x.y_z", strings.Repeat("a", 128)} {
		if ValidateID(ok) != nil {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "-x", "_x", "é", "aé", strings.Repeat("a", 129), "a b", "a\x00"} {
		if ValidateID(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
