package heartbeat

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// leaseTask is task code that reports when it runs and when its
// context ends, and otherwise runs until release is closed.
type leaseTask struct {
	ran, ended, release chan struct{}
}

func newLeaseTask() *leaseTask {
	return &leaseTask{ran: make(chan struct{}, 1), ended: make(chan struct{}, 1), release: make(chan struct{})}
}

func (lt *leaseTask) run(ctx context.Context, _ *TaskInfo) ([]byte, wire.Errno) {
	lt.ran <- struct{}{}
	select {
	case <-ctx.Done():
		lt.ended <- struct{}{}
		return nil, wire.ECANCELED
	case <-lt.release:
		return nil, wire.OK
	}
}

// TestWorkerLeaseCancelsTaskItsMasterEnded: a master that ends a task
// without telling the worker (here it closes, which sends no cancel;
// the same holds for a cancel lost on the way or a master restarted
// within the detection bound) while the master stays a live member: the
// worker's lease check is answered with a refusal and the task's
// context ends, within a few intervals.
func TestWorkerLeaseCancelsTaskItsMasterEnded(t *testing.T) {
	mn, wn := pair(t)
	m := newTestMaster(t, mn.svc)
	lt := newLeaseTask()
	defer close(lt.release) // a failing test frees the runner before Close
	wk := newTestWorker(t, wn.svc, DefaultWorkerConfig(), lt.run)
	if _, err := m.Start(ctxFor(t, 5*time.Second), wn.ep.Addr(), 1, nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-lt.ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the task never ran")
	}
	m.Close()
	select {
	case <-lt.ended:
	case <-time.After(20 * DetectBound(testConfig())):
		t.Fatal("the worker still runs a task its master ended")
	}
	if st := stateOf(wn.svc, mn.ep.Addr()); st != StateAlive {
		t.Fatalf("master seen %v; the test needs it alive", st)
	}
	if wk.Stats().Aborted != 1 {
		t.Fatalf("Aborted = %d, want 1", wk.Stats().Aborted)
	}
}

// TestWorkerLeaseCancelsTaskOfRestartedMaster: the master restarts on
// its address within the detection bound, so no member declares it dead
// and no event tells the worker; the new master does not hold the old
// one's task, answers the worker's lease check with a refusal, and the
// task's context ends.
func TestWorkerLeaseCancelsTaskOfRestartedMaster(t *testing.T) {
	cfg := testConfig()
	mep := newEndpoint(t, 1, nil)
	wep := newEndpoint(t, 2, nil)
	members := []netip.AddrPort{mep.Addr(), wep.Addr()}
	msvc, err := Start(mep, cfg, members)
	if err != nil {
		t.Fatal(err)
	}
	wn := startNode(t, wep, cfg, members)
	m := newTestMaster(t, msvc)
	lt := newLeaseTask()
	defer close(lt.release) // a failing test frees the runner before Close
	newTestWorker(t, wn.svc, DefaultWorkerConfig(), lt.run)
	if !waitFor(5*time.Second, func() bool { return stateOf(wn.svc, mep.Addr()) == StateAlive }) {
		t.Fatal("the worker never saw the master alive")
	}
	if _, err := m.Start(ctxFor(t, 5*time.Second), wep.Addr(), 1, nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-lt.ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the task never ran")
	}
	// A crash and a restart on the same address, new incarnation.
	oldInc := mep.Incarnation()
	m.Close()
	msvc.Close()
	mep.Close()
	mep2 := newEndpoint(t, 1, func(c *rfc.Config) { c.Addr = members[0].String() })
	if mep2.Incarnation() == oldInc {
		mep2.SetIncarnation(oldInc + 1)
	}
	msvc2, err := Start(mep2, cfg, members)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(msvc2.Close)
	newTestMaster(t, msvc2)
	select {
	case <-lt.ended:
	case <-time.After(20 * DetectBound(cfg)):
		t.Fatal("the worker still runs a task of the master's previous process")
	}
	if n := wn.log.count(EventDead, mep.Addr()); n != 0 {
		t.Skipf("the worker declared the master dead (%d); the test needs a restart within the bound", n)
	}
}

// simPair is a master, a worker and a third member on a simulated
// network inside a synctest bubble (virtual time), fully meshed.
type simPair struct {
	net    *simnet.Network
	addrs  []netip.AddrPort
	eps    []*rfc.Endpoint
	svcs   []*Service
	m      *Master
	wk     *Worker
	ran    chan *TaskInfo // the tasks whose code started
	cfg    Config
	master netip.AddrPort
	worker netip.AddrPort
	// task, if set, is the worker's task code after it reports to ran;
	// by default it waits for its context to end.
	task func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno)
}

// newSimPair starts the three members, the master on the first and the
// worker on the second, and waits until every member sees the others
// alive and has heard from them. It must run inside a synctest bubble.
func newSimPair(t *testing.T, task func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno)) *simPair {
	t.Helper()
	p := &simPair{ran: make(chan *TaskInfo, 16), cfg: testConfig(), task: task}
	p.net, p.addrs = simNet(t, 1, simnet.NewTrace(0), 3)
	p.master, p.worker = p.addrs[0], p.addrs[1]
	p.eps, p.svcs = make([]*rfc.Endpoint, 3), make([]*Service, 3)
	for i := range p.addrs {
		p.start(t, i)
	}
	p.m = newTestMaster(t, p.svcs[0])
	wk := newTestWorker(t, p.svcs[1], DefaultWorkerConfig(), func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno) {
		p.ran <- ti
		if p.task != nil {
			return p.task(ctx, ti)
		}
		<-ctx.Done()
		return nil, wire.ECANCELED
	})
	p.wk = wk
	if !waitFor(20*DetectBound(p.cfg), p.allAlive) {
		t.Fatal("the members never saw each other alive")
	}
	return p
}

// start starts a process of member i: a new endpoint (the next
// incarnation at its address) and its service.
func (p *simPair) start(t *testing.T, i int) {
	t.Helper()
	rcfg := rfc.DefaultConfig()
	rcfg.NodeID = uint32(i + 1)
	rcfg.Logger = quiet
	ep, err := rfc.ListenTransport(rcfg, p.net.Attach(p.addrs[i]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	svc, err := Start(ep, p.cfg, p.addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	p.eps[i], p.svcs[i] = ep, svc
}

// startRunning starts a task of kind 1 on the worker and waits until its
// code runs; it fails the test if the start is refused or the task has
// not run within 20 detection bounds.
func (p *simPair) startRunning(t *testing.T) *Task {
	t.Helper()
	tk, err := p.m.Start(ctxFor(t, 20*DetectBound(p.cfg)), p.worker, 1, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-p.ran:
	case <-time.After(20 * DetectBound(p.cfg)):
		t.Fatalf("task %d never ran: worker stats %+v", tk.ID, p.wk.Stats())
	}
	return tk
}

// restartMaster crashes the master's process and starts a new one on
// its address (a new incarnation) with a new Master.
func (p *simPair) restartMaster(t *testing.T) {
	t.Helper()
	p.net.Crash(p.master)
	p.m.Close()
	p.svcs[0].Close()
	p.eps[0].Close()
	p.start(t, 0)
	p.m = newTestMaster(t, p.svcs[0])
}

func (p *simPair) allAlive() bool {
	for _, svc := range p.svcs {
		for _, mi := range svc.Members() {
			if mi.State != StateAlive || mi.Incarnation == 0 || mi.HeardAgo < 0 {
				return false
			}
		}
	}
	return true
}

// TestWorkerRunsNoStartHeldWhilePaused: the worker is paused (as by
// SIGSTOP) while a start is on its way; the master declares it dead and
// Start returns ENODEAD. On resume the worker reads the held start,
// which looks fresh (the engine measures a request's budget from its
// arrival) and names the worker's current incarnation, and the worker
// has not yet heard that it was declared dead. The task must not run:
// the master gave it up, and its check is refused.
func TestWorkerRunsNoStartHeldWhilePaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, nil)
		p.net.Pause(p.worker)
		_, err := p.m.Start(ctxFor(t, 20*DetectBound(p.cfg)), p.worker, 1, nil)
		if errnoOf(err) != wire.ENODEAD {
			p.net.Resume(p.worker)
			t.Fatalf("Start on a paused worker: %v, want ENODEAD", err)
		}
		p.net.Resume(p.worker)
		// The worker learns it was declared dead, refutes, and is seen
		// alive again.
		if !waitFor(20*DetectBound(p.cfg), p.allAlive) {
			t.Fatal("the worker never came back alive")
		}
		synctest.Wait()
		select {
		case ti := <-p.ran:
			t.Errorf("task %d ran on the worker after its master ended it with ENODEAD (worker stats %+v)", ti.ID, p.wk.Stats())
		default:
		}
		// A new task on the worker's new incarnation runs.
		p.startRunning(t)
	})
}

// TestMasterRefusesResultOfPreviousProcess: the master restarts on its
// address (a new process, a new incarnation) within the detection
// bound, and starts a new task on the worker incarnation that runs a
// task of the previous process. The old task's result, sent when the
// worker already knows the new incarnation (so the engine's fence lets
// it through) and arriving while the new task's start is in flight,
// must be refused ESTALE, not applied to the new task. The new task's id
// is not the old one's (a master's ids start at a random value); the
// master incarnation the result names tells them apart should they meet.
func TestMasterRefusesResultOfPreviousProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		defer func() {
			select {
			case <-gate:
			default:
				close(gate) // a failing test frees the old task
			}
		}()
		var old uint32
		p := newSimPair(t, func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno) {
			if ti.MasterIncarnation != old {
				<-ctx.Done()
				return nil, wire.ECANCELED
			}
			select {
			case <-gate:
				return []byte("old"), wire.OK
			case <-ctx.Done():
				return nil, wire.ECANCELED
			}
		})
		old = p.eps[0].Incarnation()
		tk1 := p.startRunning(t)
		p.restartMaster(t)
		if p.eps[0].Incarnation() == old {
			t.Fatalf("the restarted master kept incarnation %d", old)
		}
		// The worker's engine hears the new process (its result calls
		// name the new incarnation from now on).
		if _, err := QueryMembers(ctxFor(t, 5*time.Second), p.eps[0], p.worker); err != nil {
			t.Fatalf("members query from the new process: %v", err)
		}
		// The old task ends now, and the new process starts its task
		// (the same id) at the same instant: the old result reaches the
		// new process while the new start is in flight.
		close(gate)
		tk2, err := p.m.Start(ctxFor(t, 20*DetectBound(p.cfg)), p.worker, 1, nil)
		if err != nil {
			t.Fatalf("Start under the new process: %v", err)
		}
		if tk2.ID == tk1.ID {
			t.Fatalf("new task id %d, old %d: a restarted master issued its predecessor's ids again", tk2.ID, tk1.ID)
		}
		time.Sleep(2 * p.cfg.Interval)
		synctest.Wait()
		select {
		case <-tk2.Done():
			t.Errorf("the new process's task %d ended with %v, result %q: the previous process's result was applied to it", tk2.ID, tk2.Err(), tk2.Result())
		default:
		}
		if st := p.m.Stats(); st.Stale != 1 {
			t.Errorf("new master stats %+v: want the old result refused (Stale 1)", st)
		}
	})
}

// TestWorkerRunsConfirmedTaskPastUnconfirmed: a task whose check the
// master does not confirm (here it answers EBUSY, neither a
// confirmation nor a refusal) takes no runner: with one runner, a task
// started after it and confirmed runs while the first still waits (its
// lease has not lapsed). Accepted tasks not yet taken by a runner are
// bounded by Queue: past it a start is refused EBUSY.
func TestWorkerRunsConfirmedTaskPastUnconfirmed(t *testing.T) {
	cfg := configAt(time.Second)
	cm := newCheckingMaster(t, cfg, func(id uint64) wire.Errno {
		if id%2 == 1 {
			return wire.EBUSY // odd ids: never confirmed
		}
		return wire.OK
	})
	type run struct {
		id      uint64
		aborted uint64
	}
	ran := make(chan run, 4)
	release := make(chan struct{})
	defer close(release) // a failing test frees the runner before Close
	var wkp atomic.Pointer[Worker]
	wcfg := DefaultWorkerConfig()
	wcfg.Runners, wcfg.Queue = 1, 2
	wk := newTestWorker(t, cm.svc, wcfg, func(ctx context.Context, ti *TaskInfo) ([]byte, wire.Errno) {
		ran <- run{ti.ID, wkp.Load().Stats().Aborted}
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil, wire.OK
	})
	wkp.Store(wk)
	for _, id := range []uint64{1, 2} {
		if err := cm.start(t, id); err != nil {
			t.Fatalf("start %d: %v", id, err)
		}
	}
	select {
	case r := <-ran:
		if r.id != 2 || r.aborted != 0 {
			t.Errorf("task %d ran with %d aborted; want task 2 running while task 1 waits unaborted", r.id, r.aborted)
		}
	case <-time.After(20 * DetectBound(cfg)):
		t.Fatalf("no task ran: %+v", wk.Stats())
	}
	// Task 1 waits, task 2 runs: one more start fills the Queue.
	if err := cm.start(t, 3); err != nil {
		t.Fatalf("start 3: %v", err)
	}
	if err := cm.start(t, 5); errnoOf(err) != wire.EBUSY {
		t.Errorf("start 5 with two tasks waiting and Queue 2: %v, want EBUSY", err)
	}
}

// TestLateCancelSparesRestartedMastersTask: a copy of a task-cancel that
// the master's previous process sent (held in the network past the
// master's restart, or captured and replayed within the age bound: the
// call is idempotent, so neither the duplicate cache nor the restart rule
// stops it) reaches the worker after the new process has started a task.
// The new task must keep running: the cancel named a task of the
// previous process.
func TestLateCancelSparesRestartedMastersTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, nil)
		tk1 := p.startRunning(t)
		// The first copy of the cancel is held 2 s in the network; the
		// retransmission goes through and cancels the task at once.
		p.net.SetFaults(p.master, p.worker, simnet.Faults{Delay: simnet.Dist{Base: 2 * time.Second}})
		done := make(chan error, 1)
		go func() { done <- p.m.Cancel(ctxFor(t, time.Second), tk1) }()
		time.Sleep(time.Millisecond)
		p.net.SetFaults(p.master, p.worker, calmLink)
		if err := <-done; err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
		p.restartMaster(t)
		tk2 := p.startRunning(t)
		time.Sleep(2 * time.Second) // the held copy arrives
		synctest.Wait()
		select {
		case <-tk2.Done():
			t.Fatalf("the new process's task %d (first task %d) ended with %v: a cancel sent by the previous process reached it", tk2.ID, tk1.ID, tk2.Err())
		default:
		}
	})
}

// TestMasterRefusesResultErrnoOutOfRange: a task-result whose error
// number does not fit an errno (16 bits) is refused EINVAL and leaves
// the task in flight. Before, the master cut it to 16 bits, so 65536
// (or 65536 + any errno) from a faulty or hostile worker was applied as
// that errno: here OK, a failed task taken for a success.
func TestMasterRefusesResultErrnoOutOfRange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, nil)
		tk := p.startRunning(t)
		ps := paramsBuf((tkParams+1)*sizeU64Param + wire.ParamHdrSize + 8)
		ps.Uint64(tk.ID)
		ps.Uint64(uint64(p.eps[0].Incarnation()))
		ps.Uint64(uint64(tk.Incarnation()))
		ps.Uint64(1 << 16) // wire.OK once cut to 16 bits
		ps.Bytes([]byte("forged"))
		var rep rfc.Reply
		err := p.eps[1].Call(ctxFor(t, 5*time.Second), p.master, CallTaskResult, ps, &rep)
		if errnoOf(err) != wire.EINVAL {
			t.Errorf("result with error number 65536: %v, want EINVAL", err)
		}
		select {
		case <-tk.Done():
			t.Fatalf("task ended with %v, result %q, by a result whose error number is out of range", tk.Err(), tk.Result())
		default:
		}
	})
}

// TestWorkerCloseEndsMasterTasks: a Worker closed while its node stays a
// live member (its service runs on) cancels every task it holds, the
// running one and the queued ones never confirmed or run; its master
// must learn that they ended. No heartbeat is lost, so no event ends
// them at the master, and the master has no lease of its own: before,
// the master's tasks stayed in flight for good (Wait never returned,
// InFlight kept them, and they held MaxTasks slots).
func TestWorkerCloseEndsMasterTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, nil)
		tk := p.startRunning(t)
		p.wk.Close()
		if _, err := tk.Wait(ctxFor(t, 20*DetectBound(p.cfg))); errnoOf(err) != wire.ECLOSED {
			t.Fatalf("the master's task after its worker closed: %v, want ECLOSED (master in flight %d)",
				err, p.m.InFlight(p.worker))
		}
		if n := p.m.InFlight(p.worker); n != 0 {
			t.Fatalf("%d tasks still in flight at the master", n)
		}
		if st := stateOf(p.svcs[0], p.worker); st != StateAlive {
			t.Fatalf("worker seen %v; the test needs it alive", st)
		}
	})
}
