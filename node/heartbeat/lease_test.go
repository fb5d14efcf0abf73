package heartbeat

import (
	"context"
	"testing"
	"time"

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
