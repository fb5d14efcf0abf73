package heartbeat

import (
	"context"
	"sync"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestDeclaredDeadByKeepsWorker: a worker that declared the master dead
// has cancelled the master's tasks; the master ends them too, but the
// worker itself is alive at the same incarnation (only the master
// refuted), so new tasks start there and report.
func TestDeclaredDeadByKeepsWorker(t *testing.T) {
	mn, wn := pair(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	newTestWorker(t, wn.svc, DefaultWorkerConfig(), func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno) {
		if ti.Kind == 1 {
			select {
			case <-ctx.Done():
			case <-release:
			}
		}
		return []byte("ok"), wire.OK
	})
	m := newTestMaster(t, mn.svc)
	worker := wn.ep.Addr()
	first, err := m.Start(ctxFor(t, 5*time.Second), worker, 1, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// What the service reports when the worker's heartbeat says it
	// declared this master dead at the master's incarnation.
	m.onEvent(Event{Kind: EventDeclaredDeadBy, Addr: worker, Incarnation: mn.ep.Incarnation()})
	if _, err := first.Wait(ctxFor(t, 5*time.Second)); errnoOf(err) != wire.ENODEAD {
		t.Fatalf("task in flight: %v, want ENODEAD", err)
	}
	once.Do(func() { close(release) })
	for i := 0; i < 3; i++ {
		task, err := m.Start(ctxFor(t, 5*time.Second), worker, 2, nil)
		if err != nil {
			t.Fatalf("Start %d after the worker's verdict: %v", i, err)
		}
		if _, err := task.Wait(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
}

// TestDeathEventsOrdered: a member revived while the engine is being told
// of its death (a heartbeat with a higher incarnation arriving between
// the verdict and EventDead) reports EventDead before EventAlive, and
// ends alive.
func TestDeathEventsOrdered(t *testing.T) {
	a, b := heardPair(t)
	victim := b.ep.Addr()
	revived := make(chan struct{})
	var once sync.Once
	a.ep.OnPeerChange(func(info rfc.PeerInfo) {
		if info.Addr != victim || info.State != rfc.PeerDead {
			return
		}
		once.Do(func() {
			// Runs inside the probe loop's MarkDead: a concurrent
			// handler hears the victim at a higher incarnation.
			s := a.svc
			s.mu.Lock()
			if m := s.mu.members[victim]; m != nil {
				s.observeLocked(m, m.inc+1, s.ep.Now())
			}
			s.mu.Unlock()
			close(revived)
		})
	})
	b.svc.Close()
	b.ep.Close()
	select {
	case <-revived:
	case <-time.After(20 * time.Second):
		t.Fatal("victim never declared dead")
	}
	var seq []EventKind
	ok := waitFor(5*time.Second, func() bool {
		a.log.mu.Lock()
		defer a.log.mu.Unlock()
		seq = seq[:0]
		after := false
		for _, ev := range a.log.evs {
			if ev.Addr != victim {
				continue
			}
			if ev.Kind == EventSuspect {
				after = true
			}
			if after {
				seq = append(seq, ev.Kind)
			}
		}
		return len(seq) >= 3
	})
	if !ok || seq[0] != EventSuspect || seq[1] != EventDead || seq[2] != EventAlive {
		t.Fatalf("events after the suspicion: %v, want suspect, dead, alive", seq)
	}
}
