package heartbeat

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestWorkerLeaseCancelsTaskItsMasterEnded: a master that ends a task
// without telling the worker (here it closes, which sends no cancel;
// the same holds for a cancel lost on the way or a master restarted
// within the detection bound) while the master stays a live member: the
// worker's lease check is answered with a refusal and the task's
// context ends, within a few intervals.
func TestWorkerLeaseCancelsTaskItsMasterEnded(t *testing.T) {
	nodes := cluster(t, 2, testConfig())
	m, err := NewMaster(nodes[0].svc, DefaultMasterConfig())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release) // a failing test frees the runner before Close
	wk, err := NewWorker(nodes[1].svc, DefaultWorkerConfig(), func(ctx context.Context, _ *TaskInfo) ([]byte, wire.Errno) {
		ran <- struct{}{}
		select {
		case <-ctx.Done():
			ended <- struct{}{}
			return nil, wire.ECANCELED
		case <-release:
			return nil, wire.OK
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer wk.Close()
	if _, err := m.Start(ctxFor(t, 5*time.Second), nodes[1].ep.Addr(), 1, nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the task never ran")
	}
	m.Close()
	select {
	case <-ended:
	case <-time.After(20 * DetectBound(testConfig())):
		t.Fatal("the worker still runs a task its master ended")
	}
	if st := stateOf(nodes[1].svc, nodes[0].ep.Addr()); st != StateAlive {
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
	m, err := NewMaster(msvc, DefaultMasterConfig())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{}, 1)
	ended := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release) // a failing test frees the runner before Close
	wk, err := NewWorker(wn.svc, DefaultWorkerConfig(), func(ctx context.Context, _ *TaskInfo) ([]byte, wire.Errno) {
		ran <- struct{}{}
		select {
		case <-ctx.Done():
			ended <- struct{}{}
			return nil, wire.ECANCELED
		case <-release:
			return nil, wire.OK
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer wk.Close()
	if !waitFor(5*time.Second, func() bool { return stateOf(wn.svc, mep.Addr()) == StateAlive }) {
		t.Fatal("the worker never saw the master alive")
	}
	if _, err := m.Start(ctxFor(t, 5*time.Second), wep.Addr(), 1, nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-ran:
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
	m2, err := NewMaster(msvc2, DefaultMasterConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	select {
	case <-ended:
	case <-time.After(20 * DetectBound(cfg)):
		t.Fatal("the worker still runs a task of the master's previous process")
	}
	if n := wn.log.count(EventDead, mep.Addr()); n != 0 {
		t.Skipf("the worker declared the master dead (%d); the test needs a restart within the bound", n)
	}
}
