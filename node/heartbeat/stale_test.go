package heartbeat

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// staleWorld is a worker on its own service whose only member is a bare
// endpoint (no service: it sends only what a test tells it to). The
// service's interval is long, so the worker sees the bare endpoint alive
// and never probes it during a test.
type staleWorld struct {
	master *rfc.Endpoint
	wep    *rfc.Endpoint
	svc    *Service
	wk     *Worker
	ran    chan uint64 // task ids whose code started
}

func newStaleWorld(t *testing.T) *staleWorld {
	t.Helper()
	sw := &staleWorld{ran: make(chan uint64, 16)}
	sw.master = newEndpoint(t, 1, nil)
	sw.wep = newEndpoint(t, 2, nil)
	cfg := configAt(time.Hour)
	sw.svc = startNode(t, sw.wep, cfg, []netip.AddrPort{sw.master.Addr()}).svc
	wk := newTestWorker(t, sw.svc, DefaultWorkerConfig(), func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno) {
		sw.ran <- ti.ID
		<-ctx.Done()
		return nil, wire.ECANCELED
	})
	sw.wk = wk
	return sw
}

// start sends a task-start from the bare endpoint, as Master.Start does,
// with mastInc as the master incarnation it names.
func (sw *staleWorld) start(t *testing.T, id uint64, mastInc uint32) error {
	t.Helper()
	return sendStart(t, sw.master, sw.wep.Addr(), id, mastInc)
}

// sendStart sends a task-start (kind 1, no payload) from a bare
// endpoint to a worker, as Master.Start does, naming mastInc as the
// master incarnation.
func sendStart(t *testing.T, from *rfc.Endpoint, to netip.AddrPort, id uint64, mastInc uint32) error {
	t.Helper()
	ps := paramsBuf(4*sizeU64Param + 16)
	ps.Uint64(id)
	ps.Uint64(uint64(mastInc))
	ps.Uint64(1)
	ps.Bytes(nil)
	var rep rfc.Reply
	return from.Call(ctxFor(t, 5*time.Second), to, CallTaskStart, ps, &rep)
}

// checkingMaster is a bare endpoint (node 1) in a master's place that
// answers a worker's task-check with check(task id), and a service (node
// 2) whose only member it is, for a worker under test.
type checkingMaster struct {
	mep *rfc.Endpoint
	svc *Service
}

func newCheckingMaster(t *testing.T, cfg Config, check func(id uint64) wire.Errno) *checkingMaster {
	t.Helper()
	cm := &checkingMaster{mep: newEndpoint(t, 1, nil)}
	wep := newEndpoint(t, 2, nil)
	if err := cm.mep.Register(CallTaskCheck, "task-check", schemaTaskCheck, rfc.Idempotent, func(req *rfc.Request, _ *wire.Params) wire.Errno {
		return check(req.Param(rpParamID).Uint64())
	}); err != nil {
		t.Fatal(err)
	}
	cm.svc = startNode(t, wep, cfg, []netip.AddrPort{cm.mep.Addr()}).svc
	return cm
}

// start sends the worker a task-start for id from the bare endpoint,
// under its current incarnation.
func (cm *checkingMaster) start(t *testing.T, id uint64) error {
	t.Helper()
	return sendStart(t, cm.mep, cm.svc.Endpoint().Addr(), id, cm.mep.Incarnation())
}

// TestWorkerRefusesStartToLeftIncarnation: a start the master addressed
// to an incarnation the worker has since left (it was declared dead and
// refuted while the request was held) is refused ESTALE and never runs:
// the master gave the task up, and the worker's abort rule skips tasks
// accepted above the incarnation it was declared dead at.
func TestWorkerRefusesStartToLeftIncarnation(t *testing.T) {
	sw := newStaleWorld(t)
	if err := sw.start(t, 1, sw.master.Incarnation()); err != nil {
		t.Fatalf("first start: %v", err) // teaches the master the worker's incarnation
	}
	inc := sw.wep.Incarnation()
	sw.wep.SetIncarnation(inc + 1) // a refutation; the master has not heard it
	err := sw.start(t, 2, sw.master.Incarnation())
	if errnoOf(err) != wire.ESTALE {
		t.Errorf("start addressed to incarnation %d after the worker moved to %d: got %v, want ESTALE", inc, inc+1, err)
	}
	if st := sw.wk.Stats(); st.Started != 1 {
		t.Errorf("worker stats %+v: want 1 started", st)
	}
}

// TestWorkerRefusesStartFromRefutedMaster: after this worker declared
// its master dead at incarnation X (EventDead: it cancelled the master's
// tasks, and the master, told of it, ends every task it started under X
// or below), a start sent under X that arrives once the master is alive
// again is refused ESTALE and never runs; a start under the master's new
// incarnation runs.
func TestWorkerRefusesStartFromRefutedMaster(t *testing.T) {
	sw := newStaleWorld(t)
	old := sw.master.Incarnation()
	sw.wk.onEvent(Event{Kind: EventDead, Addr: sw.master.Addr(), Incarnation: old})
	sw.master.SetIncarnation(old + 1) // the master refuted; the service sees it alive
	if info, _ := sw.svc.Member(sw.master.Addr()); info.State != StateAlive {
		t.Fatalf("worker's view of the master: %+v, want alive", info)
	}
	err := sw.start(t, 1, old) // sent before the refutation, delivered after
	if errnoOf(err) != wire.ESTALE {
		t.Errorf("start under master incarnation %d, declared dead there: got %v, want ESTALE", old, err)
	}
	if err := sw.start(t, 2, old+1); err != nil {
		t.Errorf("start under the master's new incarnation: %v", err)
	}
	if st := sw.wk.Stats(); st.Started != 1 {
		t.Errorf("worker stats %+v: want 1 started", st)
	}
}

// TestMasterCancelsTasksItEnds: a task the master ends because the
// worker declared the master dead is cancelled on the worker (one-way
// task-cancel), so that a worker that accepted it after its own view of
// the loss does not keep running it.
func TestMasterCancelsTasksItEnds(t *testing.T) {
	mep := newEndpoint(t, 1, nil)
	wep := newEndpoint(t, 2, nil)
	cancels := make(chan uint64, 4)
	if err := wep.Register(CallTaskCancel, "task-cancel", schemaTaskCancel, rfc.Idempotent, func(req *rfc.Request, _ *wire.Params) wire.Errno {
		cancels <- req.Param(tcParamID).Uint64()
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	cfg := configAt(time.Hour)
	svc := startNode(t, mep, cfg, []netip.AddrPort{wep.Addr()}).svc
	m := newTestMaster(t, svc)
	mastInc := mep.Incarnation()
	tk := newTask(m.nextID.Add(1), wep.Addr(), 1)
	tk.mu.inc, tk.mu.mastInc = wep.Incarnation(), mastInc
	m.mu.Lock()
	m.mu.tasks[tk.ID] = tk
	m.mu.Unlock()
	m.onEvent(Event{Kind: EventDeclaredDeadBy, Addr: wep.Addr(), Incarnation: mastInc})
	if errnoOf(tk.Err()) != wire.ENODEAD {
		t.Fatalf("task after EventDeclaredDeadBy: %v, want ENODEAD", tk.Err())
	}
	select {
	case id := <-cancels:
		if id != tk.ID {
			t.Errorf("cancel for task %d, want %d", id, tk.ID)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no task-cancel reached the worker for the task the master ended")
	}
}

// TestWorkerConfirmsStartAfterMasterRevived: a start that arrives soon
// after this worker's service revived its master from a death it had
// declared (the start may have waited out the loss in the network, long
// after the master gave it up) runs only once a check confirms that the
// master holds the task, as every start does: refused by the master
// (ENOENT), it is aborted without running; confirmed, it runs.
func TestWorkerConfirmsStartAfterMasterRevived(t *testing.T) {
	cfg := configAt(time.Second)
	cfg.ReprobeInterval = time.Hour
	cm := newCheckingMaster(t, cfg, func(id uint64) wire.Errno {
		if id == 1 {
			return wire.ENOENT // given up on
		}
		return wire.OK
	})
	mep, svc := cm.mep, cm.svc
	ran := make(chan uint64, 4)
	wk := newTestWorker(t, svc, DefaultWorkerConfig(), func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno) {
		ran <- ti.ID
		return nil, wire.OK
	})
	// The master declared dead here, then alive again.
	svc.mu.Lock()
	m := svc.mu.members[mep.Addr()]
	m.state, m.deadInc = StateDead, mep.Incarnation()
	svc.toAliveLocked(m, svc.ep.Now())
	svc.mu.Unlock()
	mep.SetIncarnation(mep.Incarnation() + 1)
	if err := cm.start(t, 1); err != nil {
		t.Fatalf("start 1: %v", err)
	}
	if !waitFor(10*time.Second, func() bool { return wk.Stats().Aborted == 1 }) {
		t.Errorf("task 1 not aborted on the master's refusal: %+v", wk.Stats())
	}
	if err := cm.start(t, 2); err != nil {
		t.Fatalf("start 2: %v", err)
	}
	select {
	case id := <-ran:
		if id != 2 {
			t.Errorf("task %d ran, want only 2 (1 was refused by its master's check)", id)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("confirmed task 2 never ran: %+v", wk.Stats())
	}
}
