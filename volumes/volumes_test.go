package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/spec"
)

func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_PRIVILEGED") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("privileged test: CI must set BERTH_PRIVILEGED=1")
		}
		t.Skip("privileged test: set BERTH_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("BERTH_PRIVILEGED=1 needs root")
	}
}

func newManager(t testing.TB) *Manager {
	t.Helper()
	root := t.TempDir()
	m, err := NewForRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "proj_data", "x.y-z", "A1"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "..", "a b", strings.Repeat("a", 201), "a\x00"} {
		if err := ValidateName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestVolumeName(t *testing.T) {
	p := &spec.Project{Name: "shop", Volumes: []spec.Volume{
		{Name: "db"},
		{Name: "cache", ActualName: "shared-cache"},
		{Name: "ext", ActualName: "ext-vol", External: true},
		{Name: "bare", External: true},
	}}
	for key, want := range map[string]string{"db": "shop_db", "cache": "shared-cache", "ext": "ext-vol", "bare": "bare"} {
		got, err := VolumeName(p, key)
		if err != nil || got != want {
			t.Errorf("VolumeName(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := VolumeName(p, "nope"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("undeclared volume: %v", err)
	}
}

func TestAnonymousName(t *testing.T) {
	a := AnonymousName("p", "p-web-1", "/data")
	if a != AnonymousName("p", "p-web-1", "/data") {
		t.Fatal("anonymous name not stable")
	}
	others := []string{AnonymousName("p", "p-web-2", "/data"), AnonymousName("p", "p-web-1", "/data2"), AnonymousName("q", "p-web-1", "/data")}
	for _, o := range others {
		if o == a {
			t.Fatalf("anonymous names collide: %s", o)
		}
	}
	if err := ValidateName(a); err != nil {
		t.Fatal(err)
	}
}

func TestResolveBindSource(t *testing.T) {
	proj := t.TempDir()
	if err := os.Mkdir(filepath.Join(proj, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveBindSource("./site/../site", proj, false)
	if err != nil || got != filepath.Join(proj, "site") {
		t.Fatalf("relative: %q, %v", got, err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.Mkdir(filepath.Join(home, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := ResolveBindSource("~/conf", proj, false); err != nil || got != filepath.Join(home, "conf") {
		t.Fatalf("~: %q, %v", got, err)
	}
	missing := filepath.Join(proj, "new", "dir")
	_, err = ResolveBindSource(missing, proj, false)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing source without create_host_path: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("source created without create_host_path")
	}
	if got, err := ResolveBindSource("new/dir", proj, true); err != nil || got != missing {
		t.Fatalf("create_host_path: %q, %v", got, err)
	}
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Fatalf("create_host_path did not create a directory: %v", err)
	}
	if _, err := ResolveBindSource("rel", "not/abs", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("relative project dir: %v", err)
	}
	if _, err := ResolveBindSource("a\x00b", proj, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NUL: %v", err)
	}
	if _, err := ResolveBindSource("", proj, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty: %v", err)
	}
}

func TestBindOptions(t *testing.T) {
	for _, tc := range []struct {
		ro   bool
		prop string
		want []string
	}{
		{false, "", []string{"rbind", "rw", "rprivate"}},
		{true, "", []string{"rbind", "ro", "rprivate"}},
		{false, "shared", []string{"rbind", "rw", "shared"}},
		{false, "rshared", []string{"rbind", "rw", "rshared"}},
		{true, "slave", []string{"rbind", "ro", "slave"}},
		{false, "rslave", []string{"rbind", "rw", "rslave"}},
		{false, "private", []string{"rbind", "rw", "private"}},
	} {
		got, err := BindOptions(tc.ro, tc.prop)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("BindOptions(%v, %q) = %v, %v; want %v", tc.ro, tc.prop, got, err, tc.want)
		}
	}
	if _, err := BindOptions(false, "sideways"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "sideways") {
		t.Errorf("bad propagation: %v", err)
	}
}

func TestTmpfsOptions(t *testing.T) {
	mt, err := TmpfsMount("/cache/", 64<<20, 0o700, false)
	if err != nil {
		t.Fatal(err)
	}
	want := specs.Mount{Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rw", "size=67108864", "mode=700"}}
	if !reflect.DeepEqual(mt, want) {
		t.Errorf("TmpfsMount = %+v, want %+v", mt, want)
	}
	mt, _ = TmpfsMount("/t", 0, 0, true)
	if !reflect.DeepEqual(mt.Options, []string{"nosuid", "nodev", "ro", "mode=1777"}) {
		t.Errorf("defaults: %v", mt.Options)
	}
	if _, err := TmpfsMount("rel", 0, 0, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative target: %v", err)
	}
	if _, err := TmpfsMount("/", 0, 0, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("root target: %v", err)
	}
	if _, err := TmpfsMount("/x", 0, 0o17777, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad mode: %v", err)
	}

	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/run", []string{"noexec", "nosuid", "nodev"}},
		{"/run:size=64m,mode=1770", []string{"noexec", "nosuid", "nodev", "size=64m", "mode=1770"}},
		{"/run:exec,uid=1000", []string{"nosuid", "nodev", "exec", "uid=1000"}},
		{"/run:rw,noexec,nosuid,nodev,size=10%", []string{"rw", "noexec", "nosuid", "nodev", "size=10%"}},
		// Each flag the entry gives replaces Docker's default of the pair.
		{"/run:dev,suid,ro", []string{"noexec", "dev", "suid", "ro"}},
	} {
		mt, err := ParseTmpfs(tc.in)
		if err != nil || mt.Destination != "/run" || mt.Type != "tmpfs" || !reflect.DeepEqual(mt.Options, tc.want) {
			t.Errorf("ParseTmpfs(%q) = %+v, %v; want options %v", tc.in, mt, err, tc.want)
		}
	}
	for _, bad := range []string{"run", "/run:size=lots", "/run:mode=999", "/run:bind", "/run:uid=-1", "/:size=1m"} {
		if _, err := ParseTmpfs(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTmpfs(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseDriverOpts(t *testing.T) {
	for _, tc := range []struct {
		in      map[string]string
		wantErr string
		want    driverOpts
	}{
		{in: nil},
		{in: map[string]string{"type": "none", "o": "bind", "device": "/srv/x"}, want: driverOpts{Device: "/srv/x", Opts: []string{"bind"}}},
		{in: map[string]string{"o": "bind,ro", "device": "/srv/x"}, want: driverOpts{Device: "/srv/x", Opts: []string{"bind", "ro"}}},
		{in: map[string]string{"type": "tmpfs", "o": "size=1m,uid=10"}, want: driverOpts{Type: "tmpfs", Device: "tmpfs", Opts: []string{"size=1m", "uid=10"}}},
		{in: map[string]string{"type": "ext4", "device": "/dev/vdb"}, want: driverOpts{Type: "ext4", Device: "/dev/vdb"}},
		{in: map[string]string{"o": "bind", "device": "rel/dir"}, wantErr: "absolute host path"},
		{in: map[string]string{"type": "ext4", "o": "bind", "device": "/x"}, wantErr: "want none"},
		{in: map[string]string{"o": "size=1m"}, wantErr: "type is required"},
		{in: map[string]string{"type": "ext4"}, wantErr: "needs a device"},
		{in: map[string]string{"color": "red"}, wantErr: `unknown option "color"`},
		{in: map[string]string{"type": "tmpfs", "o": "remount"}, wantErr: "not allowed"},
	} {
		got, err := parseDriverOpts(tc.in)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseDriverOpts(%v) = %v, want error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseDriverOpts(%v) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestVolumesFrom(t *testing.T) {
	for in, want := range map[string]VolumesFrom{
		"db":                 {Service: "db"},
		"db:ro":              {Service: "db", ReadOnly: true},
		"db:rw":              {Service: "db"},
		"container:old":      {Container: "old"},
		"container:old-1:ro": {Container: "old-1", ReadOnly: true},
		"container:old-1:rw": {Container: "old-1"},
	} {
		got, err := ParseVolumesFrom(in)
		if err != nil || got != want {
			t.Errorf("ParseVolumesFrom(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":ro", "db:rx", "container:", "container::ro"} {
		if _, err := ParseVolumesFrom(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseVolumesFrom(%q) = %v, want ErrInvalid", bad, err)
		}
	}

	m := newManager(t)
	src := []specs.Mount{
		{Destination: "/data", Type: "bind", Source: m.dataPath("p_data"), Options: []string{"rbind", "rw", "rprivate"}},
		{Destination: "/conf", Type: "bind", Source: "/srv/conf", Options: []string{"rbind", "ro", "rprivate"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid"}},
		{Destination: "/run/secrets/pw", Type: "bind", Source: filepath.Join(m.filesDir, "c", "secrets", "0-pw"), Options: []string{"rbind", "ro"}},
	}
	got, err := m.InheritMounts("container:c:ro", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.Mount{
		{Destination: "/data", Type: "bind", Source: m.dataPath("p_data"), Options: []string{"rbind", "ro", "rprivate"}},
		{Destination: "/conf", Type: "bind", Source: "/srv/conf", Options: []string{"rbind", "ro", "rprivate"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InheritMounts(:ro) = %+v\nwant %+v", got, want)
	}
	if src[0].Options[1] != "rw" {
		t.Error("InheritMounts changed its input")
	}
	got, _ = m.InheritMounts("c", src)
	if len(got) != 2 || got[0].Options[1] != "rw" || got[1].Options[1] != "ro" {
		t.Errorf("InheritMounts(rw) = %+v", got)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	m := newManager(t)
	v, err := m.Create("mydata", CreateOptions{Labels: map[string]string{"team": "a"}, DriverOpts: map[string]string{"type": "tmpfs", "o": "size=1m"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(m.Dir(), "mydata", "_data") || v.Driver != "local" || v.CreatedAt.IsZero() {
		t.Fatalf("created %+v", v)
	}
	got, err := m.Inspect("mydata")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("Inspect = %+v\nwant %+v", got, v)
	}
	// The file itself is JSON with the documented keys.
	b, err := os.ReadFile(filepath.Join(m.Dir(), "mydata", "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Name", "Driver", "CreatedAt", "Labels", "Options", "Scope"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("meta.json lacks %s: %s", k, b)
		}
	}
	if _, err := m.Create("mydata", CreateOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := m.Create("bad/name", CreateOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := m.Create("x", CreateOptions{Driver: "nfs-plugin"}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("bad driver: %v", err)
	}
	if _, err := m.Create("y", CreateOptions{DriverOpts: map[string]string{"bogus": "1"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad driver opts: %v", err)
	}
	if _, err := m.Create("other", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := m.List()
	if err != nil || len(list) != 2 || list[0].Name != "mydata" || list[1].Name != "other" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := m.Remove("mydata", false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Inspect("mydata"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inspect removed: %v", err)
	}
	if err := m.Remove("mydata", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	ents, _ := os.ReadDir(m.Dir())
	for _, e := range ents {
		if e.Name() != "other" && e.Name() != lockFile {
			t.Errorf("leftover %s in volumes dir", e.Name())
		}
	}
}

func testProject(t testing.TB) *spec.Project {
	return &spec.Project{
		Name:       "proj",
		WorkingDir: t.TempDir(),
		Volumes: []spec.Volume{
			{Name: "data", Labels: map[string]string{"tier": "db"}},
			{Name: "ext", ActualName: "outside", External: true},
		},
	}
}

func TestPrepareNamedAnonymousTmpfsBind(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	svc := &spec.Service{
		Name: "web",
		Mounts: []spec.Mount{
			{Type: spec.MountVolume, Source: "data", Target: "/var/lib/data"},
			{Type: spec.MountVolume, Target: "/cache"},
			{Type: spec.MountBind, Source: "./site", Target: "/srv/site", ReadOnly: true, CreateHostPath: true, Propagation: "rslave"},
			{Type: spec.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20},
			{Type: spec.MountVolume, Source: "data", Target: "/var/lib/data/sub", Subpath: "a/b"},
		},
		Tmpfs: []string{"/run:size=1m"},
	}
	mounts, release, err := m.Prepare(context.Background(), p, svc, "proj-web-1", "")
	if err != nil {
		t.Fatal(err)
	}
	anon := AnonymousName("proj", "proj-web-1", "/cache")
	want := []specs.Mount{
		{Destination: "/cache", Type: "bind", Source: m.dataPath(anon), Options: []string{"rbind", "rw", "rprivate"}},
		{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rw", "size=1048576", "mode=1777"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "size=1m"}},
		{Destination: "/srv/site", Type: "bind", Source: filepath.Join(p.WorkingDir, "site"), Options: []string{"rbind", "ro", "rslave"}},
		{Destination: "/var/lib/data", Type: "bind", Source: m.dataPath("proj_data"), Options: []string{"rbind", "rw", "rprivate"}},
		{Destination: "/var/lib/data/sub", Type: "bind", Source: filepath.Join(m.dataPath("proj_data"), "a/b"), Options: []string{"rbind", "rw", "rprivate"}},
	}
	if !reflect.DeepEqual(mounts, want) {
		t.Fatalf("mounts:\n%+v\nwant\n%+v", mounts, want)
	}
	v, err := m.Inspect("proj_data")
	if err != nil {
		t.Fatal(err)
	}
	if v.Labels[LabelProject] != "proj" || v.Labels[LabelVolume] != "data" || v.Labels["tier"] != "db" || !slices.Equal(v.UsedBy, []string{"proj-web-1"}) {
		t.Fatalf("named volume metadata %+v", v)
	}
	a, err := m.Inspect(anon)
	if err != nil || !a.Anonymous || a.Labels[LabelContainer] != "proj-web-1" || a.Labels[LabelTarget] != "/cache" {
		t.Fatalf("anonymous volume %+v, %v", a, err)
	}
	if err := os.WriteFile(filepath.Join(m.dataPath(anon), "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("proj_data", false); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove in use: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if v, _ := m.Inspect("proj_data"); len(v.UsedBy) != 0 {
		t.Fatalf("users after release: %v", v.UsedBy)
	}

	// A recreate of the same container finds its anonymous volume again...
	if _, release, err = m.Prepare(context.Background(), p, svc, "proj-web-1", ""); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(filepath.Join(m.dataPath(anon), "keep")); err != nil {
		t.Fatalf("anonymous volume not kept across recreate: %v", err)
	}
	// ...and --renew-anon-volumes gives a fresh one.
	if _, release, err = m.PrepareWithOptions(context.Background(), p, svc, "proj-web-1", "", PrepareOptions{RenewAnonymous: true}); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(filepath.Join(m.dataPath(anon), "keep")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("renewed anonymous volume kept old data: %v", err)
	}

	// down -v: named and anonymous go, but not volumes berth did not make for the project.
	if _, err := m.Create("outside", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	removed, err := m.RemoveProjectVolumes("proj", false)
	if err != nil || !slices.Equal(removed, []string{"proj_data"}) {
		t.Fatalf("RemoveProjectVolumes(named) = %v, %v", removed, err)
	}
	removed, err = m.RemoveProjectVolumes("proj", true)
	if err != nil || !slices.Equal(removed, []string{anon}) {
		t.Fatalf("RemoveProjectVolumes(anonymous) = %v, %v", removed, err)
	}
	if _, err := m.Inspect("outside"); err != nil {
		t.Fatalf("RemoveProjectVolumes touched a volume it did not make: %v", err)
	}
}

func TestPrepareExternal(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	svc := &spec.Service{Name: "web", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "ext", Target: "/ext"}}}
	_, _, err := m.Prepare(context.Background(), p, svc, "proj-web-1", "")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `external volume "outside" not found`) {
		t.Fatalf("missing external: %v", err)
	}
	if _, err := m.Inspect("outside"); !errors.Is(err, ErrNotFound) {
		t.Fatal("berth created an external volume")
	}
	if _, err := m.Create("outside", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mounts, release, err := m.Prepare(context.Background(), p, svc, "proj-web-1", "")
	if err != nil || len(mounts) != 1 || mounts[0].Source != m.dataPath("outside") {
		t.Fatalf("external: %v, %v", mounts, err)
	}
	release()
	if removed, err := m.RemoveProjectVolumes("proj", true); err != nil || len(removed) != 0 {
		t.Fatalf("down -v removed %v, %v", removed, err)
	}

	// A volume the project created, then declared external: down -v
	// keeps it when told the project's external names.
	p.Volumes = append(p.Volumes, spec.Volume{Name: "db"})
	svc.Mounts = []spec.Mount{{Type: spec.MountVolume, Source: "db", Target: "/db"}}
	_, release, err = m.Prepare(context.Background(), p, svc, "proj-web-1", "")
	if err != nil {
		t.Fatal(err)
	}
	release()
	p.Volumes[len(p.Volumes)-1].External = true
	p.Volumes[len(p.Volumes)-1].ActualName = "proj_db" // external: true, name: proj_db
	if ext := ExternalNames(p); !slices.Equal(ext, []string{"outside", "proj_db"}) {
		t.Fatalf("ExternalNames = %v", ext)
	}
	if removed, err := m.RemoveProjectVolumes("proj", true, ExternalNames(p)...); err != nil || len(removed) != 0 {
		t.Fatalf("down -v removed %v, %v", removed, err)
	}
	if _, err := m.Inspect("proj_db"); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareRollback(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	p.Secrets = []spec.File{{Name: "pw", Environment: "BERTH_TEST_UNSET_VAR"}}
	svc := &spec.Service{
		Name: "web",
		Mounts: []spec.Mount{
			{Type: spec.MountVolume, Source: "data", Target: "/data"},
			{Type: spec.MountVolume, Target: "/anon"},
		},
		Secrets: []spec.FileRef{{Source: "pw"}},
	}
	if _, err := m.Create("proj_data", CreateOptions{}); err != nil { // exists before: must stay, without the user
		t.Fatal(err)
	}
	m.LookupEnv = func(string) (string, bool) { return "", false }
	_, _, err := m.Prepare(context.Background(), p, svc, "proj-web-1", "")
	if err == nil || !strings.Contains(err.Error(), "BERTH_TEST_UNSET_VAR is not set") || !strings.Contains(err.Error(), `service "web"`) {
		t.Fatalf("error %v", err)
	}
	list, _ := m.List()
	if len(list) != 1 || list[0].Name != "proj_data" || len(list[0].UsedBy) != 0 {
		t.Fatalf("after failed Prepare: %+v", list)
	}
	if _, err := os.Stat(filepath.Join(m.filesDir, "proj-web-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("secret dir left: %v", err)
	}

	// Duplicate targets and bad input are errors, not panics.
	for _, bad := range []*spec.Service{
		{Name: "d", Mounts: []spec.Mount{{Type: spec.MountTmpfs, Target: "/x"}, {Type: spec.MountTmpfs, Target: "/x/"}}},
		{Name: "d", Mounts: []spec.Mount{{Type: "nfs", Target: "/x"}}},
		{Name: "d", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "undeclared", Target: "/x"}}},
		{Name: "d", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/x", Subpath: "../up"}}},
		{Name: "d", Mounts: []spec.Mount{{Type: spec.MountBind, Source: "/nonexistent/berth", Target: "/x"}}},
	} {
		if _, _, err := m.Prepare(context.Background(), p, bad, "proj-d-1", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Prepare(%+v) = %v, want ErrInvalid", bad.Mounts, err)
		}
	}
	if _, _, err := m.Prepare(context.Background(), p, svc, "../evil", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad container name: %v", err)
	}
	if _, _, err := m.Prepare(context.Background(), nil, nil, "c", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil project: %v", err)
	}
}

func TestSecretsAndConfigs(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	secretFile := filepath.Join(p.WorkingDir, "db_pw.txt")
	if err := os.WriteFile(secretFile, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Secrets = []spec.File{{Name: "db_pw", File: secretFile}, {Name: "token", Environment: "TOKEN"}}
	p.Configs = []spec.File{{Name: "app.conf", Content: "debug=1\n"}, {Name: "ext", External: true}}
	uid, gid := os.Getuid(), os.Getgid()
	ids := func() (string, string) { return itoa(uid), itoa(gid) }
	u, g := ids()
	mode := func(m uint32) *uint32 { return &m }
	svc := &spec.Service{
		Name: "api",
		Secrets: []spec.FileRef{
			{Source: "db_pw", UID: u, GID: g},
			{Source: "token", Target: "tok", Mode: mode(0o400), UID: u, GID: g},
		},
		Configs: []spec.FileRef{
			{Source: "app.conf", UID: u, GID: g},
			{Source: "app.conf", Target: "/etc/app/app.conf", Mode: mode(0o640), UID: u, GID: g},
		},
	}
	m.LookupEnv = func(k string) (string, bool) {
		if k == "TOKEN" {
			return "s3cret", true
		}
		return "", false
	}
	mounts, release, err := m.Prepare(context.Background(), p, svc, "proj-api-1", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		content string
		mode    fs.FileMode
	}{
		"/run/secrets/db_pw": {"hunter2", 0o444},
		"/run/secrets/tok":   {"s3cret", 0o400},
		"/app.conf":          {"debug=1\n", 0o444},
		"/etc/app/app.conf":  {"debug=1\n", 0o640},
	}
	if len(mounts) != len(want) {
		t.Fatalf("mounts %+v", mounts)
	}
	for _, mt := range mounts {
		w, ok := want[mt.Destination]
		if !ok {
			t.Fatalf("unexpected mount %+v", mt)
		}
		if mt.Type != "bind" || !slices.Contains(mt.Options, "ro") || slices.Contains(mt.Options, "rw") {
			t.Errorf("%s: not a read-only bind: %+v", mt.Destination, mt)
		}
		b, err := os.ReadFile(mt.Source)
		if err != nil || string(b) != w.content {
			t.Errorf("%s: content %q, %v", mt.Destination, b, err)
		}
		st, err := os.Stat(mt.Source)
		if err != nil || st.Mode().Perm() != w.mode {
			t.Errorf("%s: mode %v, want %v", mt.Destination, st.Mode(), w.mode)
		}
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.filesDir, "proj-api-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("release left the files: %v", err)
	}

	for _, tc := range []struct {
		ref  spec.FileRef
		cfg  bool
		want string
	}{
		{spec.FileRef{Source: "ext"}, true, "no config store"},
		{spec.FileRef{Source: "nope"}, false, "not declared"},
		{spec.FileRef{Source: "db_pw", UID: "root"}, false, "must be a number"},
		{spec.FileRef{Source: "db_pw", Mode: mode(0o20000)}, false, "mode"},
	} {
		s := &spec.Service{Name: "x"}
		if tc.cfg {
			s.Configs = []spec.FileRef{tc.ref}
		} else {
			s.Secrets = []spec.FileRef{tc.ref}
		}
		if _, _, err := m.Prepare(context.Background(), p, s, "proj-x-1", ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.ref, err, tc.want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSubpathAndMountpointsStayInside(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	// The volume holds a symlink out of it; a subpath through it is refused.
	if _, err := m.Create("proj_data", CreateOptions{Labels: projectLabels("proj", "data", nil)}); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(m.dataPath("proj_data"), "link")); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"link", "link/deeper", "../../..", "/etc"} {
		svc := &spec.Service{Name: "s", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/d", Subpath: sp}}}
		if _, _, err := m.Prepare(context.Background(), p, svc, "proj-s-1", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("subpath %q: %v, want ErrInvalid", sp, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("subpath created %v outside the volume", ents)
	}

	// Mountpoints in an image whose paths are symlinks to / and up and
	// out are made inside the rootfs.
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	hostSide := filepath.Join(filepath.Dir(rootfs), "host-side")
	for _, d := range []string{rootfs, hostSide} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/", filepath.Join(rootfs, "data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../host-side", filepath.Join(rootfs, "up")); err != nil {
		t.Fatal(err)
	}
	svc := &spec.Service{Name: "s", Mounts: []spec.Mount{
		{Type: spec.MountTmpfs, Target: "/data/inner"},
		{Type: spec.MountTmpfs, Target: "/up/escape"},
		{Type: spec.MountVolume, Source: "data", Target: "/vol", NoCopy: true},
	}}
	p.Secrets = []spec.File{{Name: "pw", Content: "x"}}
	svc.Secrets = []spec.FileRef{{Source: "pw", UID: itoa(os.Getuid()), GID: itoa(os.Getgid())}}
	_, release, err := m.Prepare(context.Background(), p, svc, "proj-s-1", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, want := range []string{"inner", "host-side/escape", "vol", "run/secrets/pw"} {
		if _, err := os.Lstat(filepath.Join(rootfs, want)); err != nil {
			t.Errorf("mountpoint %s not made inside the rootfs: %v", want, err)
		}
	}
	if st, err := os.Lstat(filepath.Join(rootfs, "run/secrets/pw")); err == nil && !st.Mode().IsRegular() {
		t.Errorf("secret mountpoint is %v, want a file", st.Mode())
	}
	if ents, _ := os.ReadDir(hostSide); len(ents) != 0 {
		t.Fatalf("mountpoint made outside the rootfs: %v", ents)
	}
	if _, err := os.Lstat("/inner"); err == nil {
		t.Fatal("mountpoint made on the host's /")
	}
}

func TestPrepareImageVolumesAndInherited(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	db := &spec.Service{Name: "db", Mounts: []spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/var/lib/db"},
		{Type: spec.MountTmpfs, Target: "/tmp"},
	}}
	// The image declares VOLUME /var/lib/db and /logs: the service's
	// mount covers the first, the second gets an anonymous volume.
	dbMounts, rel, err := m.PrepareWithOptions(context.Background(), p, db, "proj-db-1", "", PrepareOptions{ImageVolumes: []string{"/var/lib/db/", "/logs"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	var dests []string
	for _, mt := range dbMounts {
		dests = append(dests, mt.Destination)
	}
	if strings.Join(dests, " ") != "/tmp /logs /var/lib/db" {
		t.Fatalf("destinations %v", dests)
	}
	if dbMounts[1].Source != m.dataPath(AnonymousName("proj", "proj-db-1", "/logs")) {
		t.Fatalf("image volume mount %+v", dbMounts[1])
	}

	// volumes_from: db:ro, with the service's own /logs winning.
	inherited, err := m.InheritMounts("db:ro", dbMounts)
	if err != nil {
		t.Fatal(err)
	}
	backup := &spec.Service{Name: "backup", Mounts: []spec.Mount{{Type: spec.MountTmpfs, Target: "/logs"}}}
	mounts, rel2, err := m.PrepareWithOptions(context.Background(), p, backup, "proj-backup-1", "", PrepareOptions{Inherited: inherited})
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	if len(mounts) != 2 || mounts[0].Type != "tmpfs" || mounts[1].Destination != "/var/lib/db" || mounts[1].Options[1] != "ro" {
		t.Fatalf("backup mounts %+v", mounts)
	}
	// The inheriting container counts as a user of the volume.
	rel()
	if v, _ := m.Inspect("proj_data"); !slices.Equal(v.UsedBy, []string{"proj-backup-1"}) {
		t.Fatalf("users of an inherited volume: %v", v.UsedBy)
	}
	rel2()
	if v, _ := m.Inspect("proj_data"); len(v.UsedBy) != 0 {
		t.Fatalf("users after release: %v", v.UsedBy)
	}
}

// TestImportBoundary guards the architecture: volumes imports spec, never
// the scheduler, the supervisor or netstack.
func TestImportBoundary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range []string{"scheduler", "supervisor", "netstack"} {
				if path == "github.com/berth-dev/berth/"+bad || strings.HasPrefix(path, "github.com/berth-dev/berth/"+bad+"/") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}

func TestConcurrentPrepareSharesVolume(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	svc := &spec.Service{Name: "w", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/d"}}}
	const n = 8
	errs := make(chan error, n)
	releases := make(chan func() error, n)
	for i := range n {
		go func() {
			_, rel, err := m.Prepare(context.Background(), p, svc, "proj-w-"+strconv.Itoa(i), "")
			errs <- err
			releases <- rel
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	v, err := m.Inspect("proj_data")
	if err != nil || len(v.UsedBy) != n {
		t.Fatalf("users %v, %v; want %d", v.UsedBy, err, n)
	}
	for range n {
		rel := <-releases
		if err := rel(); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := m.Inspect("proj_data"); len(v.UsedBy) != 0 {
		t.Fatalf("users after release: %v", v.UsedBy)
	}
}

func TestPruneSweepsCrashLeftovers(t *testing.T) {
	m := newManager(t)
	if _, err := m.Create("keep", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".new-half-abc/_data", ".rm-gone-def/_data/x"} {
		if err := os.MkdirAll(filepath.Join(m.Dir(), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := m.List(); len(list) != 1 {
		t.Fatalf("leftovers listed: %v", list)
	}
	removed, err := m.Prune(PruneOptions{})
	if err != nil || len(removed) != 0 {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	ents, _ := os.ReadDir(m.Dir())
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".lock keep" {
		t.Fatalf("after prune: %v", names)
	}
}

// FuzzParsers feeds the parsers of user-written strings arbitrary input:
// they return an error or a value, never panic, and what they accept is
// well-formed.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"/run", "/run:size=64m,mode=1777", "db:ro", "container:x:rw", "a/b/../c", "bind,ro", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if mt, err := ParseTmpfs(s); err == nil && (mt.Type != "tmpfs" || !strings.HasPrefix(mt.Destination, "/") || mt.Destination == "/") {
			t.Fatalf("ParseTmpfs(%q) = %+v", s, mt)
		}
		if vf, err := ParseVolumesFrom(s); err == nil && vf.Service == "" && vf.Container == "" {
			t.Fatalf("ParseVolumesFrom(%q) = %+v", s, vf)
		}
		if sp, err := validateSubpath(s); err == nil && (strings.HasPrefix(sp, "/") || sp == ".." || strings.HasPrefix(sp, "../")) {
			t.Fatalf("validateSubpath(%q) = %q", s, sp)
		}
		_, _ = parseDriverOpts(map[string]string{"o": s, "device": s, "type": s})
		if err := ValidateName(s); err == nil && (strings.ContainsAny(s, "/\x00") || s == "." || s == "..") {
			t.Fatalf("ValidateName(%q) accepted", s)
		}
	})
}

// A container that uses no volume changes no users table: its Prepare
// and Release write nothing, and the users of others are kept.
func TestPrepareWithoutVolumesWritesNoUsers(t *testing.T) {
	m := newManager(t)
	p := testProject(t)
	users := filepath.Join(m.dir, usersFile)
	plain := &spec.Service{Name: "plain", Tmpfs: []string{"/run"}}
	if _, release, err := m.Prepare(context.Background(), p, plain, "proj-plain-1", ""); err != nil {
		t.Fatal(err)
	} else if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(users); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("users file after a container without volumes: %v", err)
	}
	db := &spec.Service{Name: "db", Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}}}
	if _, _, err := m.Prepare(context.Background(), p, db, "proj-db-1", ""); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(users)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Prepare(context.Background(), p, plain, "proj-plain-2", ""); err != nil {
		t.Fatal(err)
	}
	if st2, err := os.Stat(users); err != nil || !os.SameFile(st, st2) {
		t.Errorf("users file replaced by a container without volumes (%v)", err)
	}
	if v, err := m.Inspect("proj_data"); err != nil || !slices.Equal(v.UsedBy, []string{"proj-db-1"}) {
		t.Errorf("proj_data used by %v (%v)", v.UsedBy, err)
	}
}

func TestUserTableEqual(t *testing.T) {
	a := userTable{"v": {"c1"}}
	for _, tc := range []struct {
		b    userTable
		want bool
	}{
		{userTable{"v": {"c1"}}, true},
		{userTable{"v": {"c1"}, "w": nil}, true},
		{userTable{"v": {"c1", "c2"}}, false},
		{userTable{}, false},
		{userTable{"v": {"c1"}, "w": {"c3"}}, false},
	} {
		if got := a.equal(tc.b); got != tc.want {
			t.Errorf("%v equal %v = %v, want %v", a, tc.b, got, tc.want)
		}
	}
}
