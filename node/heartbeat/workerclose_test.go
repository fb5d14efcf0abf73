package heartbeat

import (
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

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
		ctx := ctxFor(t, 20*DetectBound(p.cfg))
		tk, err := p.m.Start(ctx, p.worker, 1, nil)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		select {
		case <-p.ran:
		case <-time.After(20 * DetectBound(p.cfg)):
			t.Fatal("the task never ran")
		}
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
