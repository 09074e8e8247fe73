package supervisor

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/hashicorp/go-multierror"
)

func TestProjectStatus(t *testing.T) {
	for _, c := range []struct {
		in   map[string]int
		want string
	}{
		{map[string]int{}, ""},
		{map[string]int{"running": 2}, "running(2)"},
		{map[string]int{"running": 2, "exited": 1, "paused": 0}, "exited(1), running(2)"},
	} {
		if got := projectStatus(c.in); got != c.want {
			t.Errorf("projectStatus(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestErrStrings(t *testing.T) {
	var me error = multierror.Append(nil, errors.New("b failed"), errors.Join(errors.New("c failed"), errors.New("a failed")))
	if got, want := errStrings(me), []string{"a failed", "b failed", "c failed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("errStrings = %q, want %q", got, want)
	}
	if errStrings(nil) != nil {
		t.Error("errStrings(nil) is not empty")
	}
}

func TestProjectImages(t *testing.T) {
	p := &spec.Project{Name: "demo", Services: []spec.Service{
		{Name: "app"}, {Name: "db", Image: "postgres:16"}, {Name: "db2", Image: "postgres:16"},
	}}
	if got, want := projectImages(p, "all"), []string{"demo-app", "postgres:16"}; !reflect.DeepEqual(got, want) {
		t.Errorf("all: %q, want %q", got, want)
	}
	if got, want := projectImages(p, "local"), []string{"demo-app"}; !reflect.DeepEqual(got, want) {
		t.Errorf("local: %q, want %q", got, want)
	}
}

func TestProjectStore(t *testing.T) {
	s, err := newProjectStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.load("demo"); err != nil || st != nil {
		t.Fatalf("load of a missing project: %v %v", st, err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := s.load(bad); err == nil {
			t.Errorf("load(%q) accepted", bad)
		}
		if err := s.save(bad, &projectState{}); err == nil {
			t.Errorf("save(%q) accepted", bad)
		}
	}
	p := &spec.Project{Name: "demo", Services: []spec.Service{{Name: "web", Image: "busybox", Replicas: 1}}}
	if err := s.save("demo", &projectState{Project: p, Hashes: map[string]string{"web": "h1"}}); err != nil {
		t.Fatal(err)
	}
	// update without create leaves a missing project alone.
	if err := s.update("other", false, func(*projectState) { t.Error("called for a missing project") }); err != nil {
		t.Fatal(err)
	}
	if err := s.update("demo", false, func(st *projectState) { st.Stopped = map[string]bool{"demo-web-1": true} }); err != nil {
		t.Fatal(err)
	}
	st, err := s.load("demo")
	if err != nil || st == nil || st.Project.Services[0].Name != "web" || st.Hashes["web"] != "h1" || !st.Stopped["demo-web-1"] {
		t.Fatalf("loaded %+v %v", st, err)
	}
	if got := s.names(); !reflect.DeepEqual(got, []string{"demo"}) {
		t.Errorf("names = %q", got)
	}
	if err := s.remove("demo"); err != nil {
		t.Fatal(err)
	}
	if err := s.remove("demo"); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

func TestAPIErrorKinds(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind string
	}{
		{fmt.Errorf("x: %w", ErrNotFound), api.KindNotFound},
		{fmt.Errorf("x: %w", ErrIsRunning), api.KindConflict},
		{badRequest("nope %d", 1), api.KindBadRequest},
		{errors.New("boom"), api.KindInternal},
	} {
		if got := api.KindOf(apiErr(c.err)); got != c.kind {
			t.Errorf("kind of %v = %s, want %s", c.err, got, c.kind)
		}
	}
}

func TestEventBusDropsInsteadOfBlocking(t *testing.T) {
	b := newEventBus()
	ch, unsub := b.subscribe("p")
	defer unsub()
	other, unsub2 := b.subscribe("q")
	defer unsub2()
	for k := 0; k < busBuffer+10; k++ {
		b.publish(api.Event{Project: "p", Action: "start"})
	}
	if len(ch) != busBuffer || len(other) != 0 {
		t.Fatalf("buffered %d (other project %d)", len(ch), len(other))
	}
	for len(ch) > 0 {
		<-ch
	}
	b.publish(api.Event{Project: "p", Action: "die"})
	if w := <-ch; w.Action != "warning" {
		t.Errorf("first event after drops: %+v, want a warning", w)
	}
	if e := <-ch; e.Action != "die" {
		t.Errorf("then %+v", e)
	}
}
