package heartbeat

import (
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
)

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
