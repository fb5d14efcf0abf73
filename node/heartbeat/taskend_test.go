package heartbeat

import (
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

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
