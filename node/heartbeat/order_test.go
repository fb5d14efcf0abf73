package heartbeat

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
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

// TestStartAnswersWithResultAhead: the worker's result comes in ahead of
// the answer to the task start (the start reply lost and resent, the
// result not), and the start call then fails: it times out, or the
// worker's heartbeat is lost and the engine fails the parked call
// ENODEAD. The worker accepted the task and ran it, and the master
// applied its result: Start returns the task with that result. It
// returned the call's error, so the caller took the task for not started
// (and would run it again elsewhere) while the master counted it
// completed.
func TestStartAnswersWithResultAhead(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := configAt(100 * time.Millisecond)
		mep, wep := s.Listen(1, nil), s.Listen(2, nil)
		mn := startNode(t, mep, cfg, []netip.AddrPort{wep.Addr()})
		startNode(t, wep, cfg, []netip.AddrPort{mep.Addr()})
		waitHeard(t, mn, wep.Addr(), 10*DetectBound(cfg))
		// The worker: its start handler reports the result first and
		// holds its answer until the test ends.
		release := make(chan struct{})
		defer close(release)
		if err := wep.Register(CallTaskStart, "task-start", schemaTaskStart, 0, func(req *rfc.Request, rep *wire.Params) wire.Errno {
			ps := paramsBuf(256)
			u64s := []uint64{req.Param(tsParamID).Uint64(), req.Param(tsParamMastInc).Uint64(), uint64(wep.Incarnation()), uint64(wire.OK)}
			for _, v := range u64s {
				ps.Uint64(v)
			}
			ps.Bytes([]byte("done"))
			if err := wep.Call(ctxFor(t, time.Second), mep.Addr(), CallTaskResult, ps, nil); err != nil {
				t.Errorf("task-result: %v", err)
			}
			<-release
			rep.Uint64(uint64(wep.Incarnation()))
			return wire.OK
		}); err != nil {
			t.Fatal(err)
		}
		if err := wep.Register(CallTaskCancel, "task-cancel", schemaTaskCancel, rfc.Idempotent, func(*rfc.Request, *wire.Params) wire.Errno {
			return wire.ENOENT
		}); err != nil {
			t.Fatal(err)
		}
		m := newTestMaster(t, mn.svc)
		check := func(how string, task *Task, err error, completed uint64) {
			t.Helper()
			if err != nil || task == nil {
				t.Errorf("%s after the result was applied: task %v, %v, want the task (stats %+v)", how, task, err, m.Stats())
				return
			}
			if res, err := task.Wait(ctxFor(t, time.Second)); err != nil || string(res) != "done" {
				t.Errorf("%s: outcome %q, %v, want the worker's result", how, res, err)
			}
			if st := m.Stats(); st.Completed != completed || st.Started != completed {
				t.Errorf("%s: stats %+v, want %d started and completed", how, st, completed)
			}
		}
		// The start reply does not come in time.
		task, err := m.Start(ctxFor(t, time.Second), wep.Addr(), 1, nil)
		check("start timed out", task, err, 1)
		// The worker's heartbeat is lost while the start waits.
		go func() {
			for m.Stats().Completed < 2 {
				time.Sleep(time.Millisecond)
			}
			s.Net.Cut(mep.Addr(), wep.Addr())
			s.Net.Cut(wep.Addr(), mep.Addr())
		}()
		task, err = m.Start(ctxFor(t, 10*DetectBound(cfg)), wep.Addr(), 1, nil)
		if st := stateOf(mn.svc, wep.Addr()); st != StateDead {
			t.Errorf("worker %v at the master once the start ended, want dead", st)
		}
		check("worker lost", task, err, 2)
	})
}

// TestTaskIDsApartFromClock: two masters made at the same wall-clock
// reading, as a master restarted after the clock was stepped back (NTP,
// a restored VM) is, issue different task ids, so that a copy of a
// cancel its predecessor sent cannot name the new process's task. Ids
// grew from the wall clock when the Master was made: in the bubble, where
// the clock stands still, both masters gave the same first id.
func TestTaskIDsApartFromClock(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := configAt(100 * time.Millisecond)
		aep, bep, wep := s.Listen(1, nil), s.Listen(2, nil), s.Listen(3, nil)
		all := []netip.AddrPort{aep.Addr(), bep.Addr(), wep.Addr()}
		an, bn, wn := startNode(t, aep, cfg, all), startNode(t, bep, cfg, all), startNode(t, wep, cfg, all)
		waitHeard(t, an, wep.Addr(), 10*DetectBound(cfg))
		waitHeard(t, bn, wep.Addr(), 10*DetectBound(cfg))
		newTestWorker(t, wn.svc, DefaultWorkerConfig(), func(context.Context, *TaskInfo) ([]byte, wire.Errno) {
			return nil, wire.OK
		})
		ma, mb := newTestMaster(t, an.svc), newTestMaster(t, bn.svc)
		ta, err := ma.Start(ctxFor(t, time.Second), wep.Addr(), 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := mb.Start(ctxFor(t, time.Second), wep.Addr(), 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ta.ID == tb.ID {
			t.Fatalf("both masters gave task id %d", ta.ID)
		}
	})
}
