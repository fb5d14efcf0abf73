package heartbeat

import (
	"net/netip"
)

// EventKind says what changed. The list is append-only.
type EventKind uint8

const (
	// EventAlive: a member became alive (first heard, refuted a
	// suspicion, or rejoined after being declared dead).
	EventAlive EventKind = iota + 1
	// EventSuspect: a member became suspect.
	EventSuspect
	// EventDead: a member was declared dead; the engine has failed every
	// call parked on it with ENODEAD.
	EventDead
	// EventAdded and EventRemoved: the member list changed.
	EventAdded
	EventRemoved
	// EventSuspectedBy: Addr told this node that it suspects it (or
	// carried another member's suspicion); this node refuted it by
	// raising its incarnation above Incarnation.
	EventSuspectedBy
	// EventDeclaredDeadBy: Addr declared this node dead at
	// Incarnation. Addr has given up on everything in flight with this
	// node; this node has raised its incarnation above Incarnation to
	// rejoin.
	EventDeclaredDeadBy
)

func (k EventKind) String() string {
	switch k {
	case EventAlive:
		return "alive"
	case EventSuspect:
		return "suspect"
	case EventDead:
		return "dead"
	case EventAdded:
		return "added"
	case EventRemoved:
		return "removed"
	case EventSuspectedBy:
		return "suspected-by"
	case EventDeclaredDeadBy:
		return "declared-dead-by"
	}
	return "?"
}

// Event is one membership change.
type Event struct {
	Kind        EventKind
	Addr        netip.AddrPort // the member concerned (for *By events: the member that told us)
	Node        uint32
	Incarnation uint32 // the member's incarnation (for *By events: ours, as they saw it)
	AtNs        int64  // engine clock when it happened
}

// listener is a registered event callback.
type listener struct {
	id int
	f  func(Event)
}

// emitLocked queues an event for the event loop. It never blocks: when
// the queue is full the event is dropped and counted. Called with
// Service.mu held, so events leave in the order they happened. Once
// Close has begun nothing more is queued, so the events a closed service
// delivers are exactly those it queued before (see eventLoop).
func (s *Service) emitLocked(ev Event) {
	if s.mu.Closed {
		return
	}
	select {
	case s.events <- ev:
	default:
		s.stats.eventsDropped.Add(1)
	}
}

// eventLoop delivers events to listeners, in order, one at a time. On
// Close it delivers the events still queued before it returns, whichever
// of the two was ready first.
func (s *Service) eventLoop() {
	defer s.wg.Done()
	for {
		select {
		case ev := <-s.events:
			s.deliver(ev)
		case <-s.done:
			for {
				select {
				case ev := <-s.events:
					s.deliver(ev)
				default:
					return
				}
			}
		}
	}
}

func (s *Service) deliver(ev Event) {
	ls := s.listeners.Load()
	if ls == nil {
		return
	}
	for _, l := range *ls {
		l.f(ev)
	}
}

// OnEvent adds a listener and returns a function that removes it.
// Listeners run on the service's event goroutine, one event at a time, in
// the order events happened; a listener must return quickly and must not
// wait for the service (it may call its methods).
func (s *Service) OnEvent(f func(Event)) (remove func()) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.nextListener++
	id := s.nextListener
	var ls []listener
	if old := s.listeners.Load(); old != nil {
		ls = append(ls, *old...)
	}
	ls = append(ls, listener{id: id, f: f})
	s.listeners.Store(&ls)
	return func() {
		s.lmu.Lock()
		defer s.lmu.Unlock()
		old := s.listeners.Load()
		if old == nil {
			return
		}
		var ls []listener
		for _, l := range *old {
			if l.id != id {
				ls = append(ls, l)
			}
		}
		s.listeners.Store(&ls)
	}
}

// Subscribe delivers events to ch without blocking: an event that does
// not fit in ch is dropped and counted (Stats.EventsDropped). It returns
// a function that stops the delivery.
func (s *Service) Subscribe(ch chan<- Event) (remove func()) {
	return s.OnEvent(func(ev Event) {
		select {
		case ch <- ev:
		default:
			s.stats.eventsDropped.Add(1)
		}
	})
}
