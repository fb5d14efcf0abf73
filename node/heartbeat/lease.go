package heartbeat

import (
	"slices"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// The worker's task lease (see Worker): the lease goroutine checks every
// task a worker holds with its master, and the answers renew, end or
// leave to run out the task's lease. A task's code runs only once a
// check is confirmed (serveStart sends the first).

// leaseLoop is the lease goroutine: every service Tick it cancels the
// tasks whose lease lapsed and sends a CallTaskCheck for each task not
// checked for an Interval, or not yet confirmed and with no check in
// flight (one check in flight per task, with the service's
// ProbeTimeout, below Interval, so that it has ended before the next is
// due; the engine runs the answer in checkDone).
func (w *Worker) leaseLoop() {
	defer w.wg.Done()
	scfg := w.svc.Config()
	lease, every := int64(DetectBound(scfg)), int64(scfg.Interval)
	// Half a Tick out of phase with the service's probe loop, started
	// at the same time: the two never act at the same instant, so that
	// a simulated run replays.
	select {
	case <-time.After(scfg.Tick / 2):
	case <-w.done:
		return
	}
	tick := time.NewTicker(scfg.Tick)
	defer tick.Stop()
	var due []*workTask
	for {
		select {
		case <-tick.C:
		case <-w.done:
			return
		}
		now := w.ep.Now()
		due = due[:0]
		w.mu.Lock()
		for _, t := range w.mu.tasks {
			if t.ctx.Err() == nil {
				due = append(due, t)
			}
		}
		w.mu.Unlock()
		slices.SortFunc(due, workOrder)
		for i, t := range due {
			due[i] = nil
			switch {
			case now-t.leased.Load() > lease:
				w.abort(t)
				continue
			case t.confirmed.Load() && now-t.checked < every, !t.checking.CompareAndSwap(false, true):
				// A confirmed task is checked every Interval; one still
				// waiting for its first confirmation as soon as its last
				// check has ended.
				continue
			}
			t.checked = now
			w.sendCheck(t, now)
		}
	}
}

// sendCheck sends t's task-check, stamped sent, with the service's
// ProbeTimeout as deadline; the caller has set t.checking. The engine
// runs the answer in checkDone.
func (w *Worker) sendCheck(t *workTask, sent int64) {
	ps := paramsBuf(tkParams * sizeU64Param)
	t.putReport(ps)
	err := w.ep.GoFunc(t.Master, CallTaskCheck, ps, w.svc.Config().ProbeTimeout, func(p *rfc.Pending) {
		w.checkDone(t, sent, wire.AsErrno(p.Err()))
	})
	if err != nil {
		w.checkDone(t, sent, wire.ETIMEDOUT) // not sent: the lease runs on
	}
}

// checkDone applies the master's answer to a check sent at sent: OK
// renews t's lease, a definite refusal cancels t, anything else (the
// call timed out or the master is marked dead) leaves the lease to run
// out. It runs on an engine goroutine and takes no lock.
func (w *Worker) checkDone(t *workTask, sent int64, e wire.Errno) {
	switch e {
	case wire.OK:
		for old := t.leased.Load(); sent > old && !t.leased.CompareAndSwap(old, sent); old = t.leased.Load() {
		}
		if !t.confirmed.Swap(true) {
			w.hand(t)
		}
	case wire.ENOENT, wire.ESTALE, wire.ECLOSED:
		w.abort(t)
	}
	t.checking.Store(false)
}
