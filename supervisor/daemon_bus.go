package supervisor

import (
	"sync"

	"github.com/berth-dev/berth/supervisor/api"
)

// eventBus fans container events out to the API's event streams. Publish
// never blocks: a subscriber that falls behind by more than its buffer
// loses events (and is told so by a "warning" event once it catches up).
type eventBus struct {
	mu   sync.Mutex // guards subs and next
	subs map[int]*busSub
	next int
}

type busSub struct {
	project string
	ch      chan api.Event
	dropped int // guarded by eventBus.mu
}

const busBuffer = 1024

func newEventBus() *eventBus { return &eventBus{subs: map[int]*busSub{}} }

// subscribe returns a channel of the events of project ("" for all) and
// the function that ends the subscription.
func (b *eventBus) subscribe(project string) (<-chan api.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	s := &busSub{project: project, ch: make(chan api.Event, busBuffer)}
	b.subs[id] = s
	return s.ch, func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

func (b *eventBus) publish(e api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.project != "" && s.project != e.Project {
			continue
		}
		if s.dropped > 0 {
			w := api.Event{Time: e.Time, Project: e.Project, Action: "warning", Message: "events were dropped: the reader was too slow"}
			select {
			case s.ch <- w:
				s.dropped = 0
			default:
				s.dropped++
				continue
			}
		}
		select {
		case s.ch <- e:
		default:
			s.dropped++
		}
	}
}

// apiEvent converts an engine event for the wire.
func apiEvent(e Event) api.Event {
	return api.Event{Time: e.Time, Project: e.Project, Service: e.Service, Container: e.Container,
		Action: e.Action, Status: e.Status, ExitCode: e.ExitCode, Message: e.Message}
}
