package heartbeat

import (
	"math"
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
// due; the engine runs the answer in checkDone). While the worker holds
// no task still running it sleeps; serveStart wakes it (wakeLease) to
// tick at the next point of its grid.
func (w *Worker) leaseLoop() {
	defer w.wg.Done()
	scfg := w.svc.Config()
	lease, every, tick := int64(DetectBound(scfg)), int64(scfg.Interval), int64(scfg.Tick)
	// Half a Tick out of phase with the service's probe loop, started
	// at the same time: the two never act at the same instant, so that
	// a simulated run replays. The loop ticks at grid + k·Tick.
	grid := w.ep.Now() + tick/2 + tick
	tm := time.NewTimer(time.Duration(tick/2 + tick))
	defer tm.Stop()
	last := int64(math.MinInt64) // the last tick
	next := grid
	gridAfter := func(t int64) int64 {
		t = max(t, last+1, grid)
		return grid + (t-grid+tick-1)/tick*tick
	}
	var due []*workTask
	for {
		select {
		case <-tm.C:
		case <-w.wake:
			// A task came while asleep: tick at the next point.
			w.stats.wakes.Add(1)
			now := w.ep.Now()
			if at := gridAfter(now); at < next {
				next = at
				tm.Reset(time.Duration(at - now))
			}
			continue
		case <-w.done:
			return
		}
		w.stats.wakes.Add(1)
		w.asleep.Store(false)
		select {
		case <-w.wake: // sent before asleep was cleared: this tick sees the task
		default:
		}
		now := w.ep.Now()
		last = now
		due = due[:0]
		w.mu.Lock()
		for _, t := range w.mu.tasks {
			if t.ctx.Err() == nil {
				due = append(due, t)
			}
		}
		w.mu.Unlock()
		live := len(due) > 0
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
		now = w.ep.Now()
		if !live {
			// No task running: asleep until serveStart publishes one. It
			// publishes under Worker.mu and then looks at asleep, set
			// here before the look below, so one of the two sees the
			// other. A task ended meanwhile asks nothing of this loop.
			w.asleep.Store(true)
			w.mu.Lock()
			for _, t := range w.mu.tasks {
				if t.ctx.Err() == nil {
					live = true
					break
				}
			}
			w.mu.Unlock()
			if !live {
				next = math.MaxInt64
				continue // the timer has fired and stays stopped
			}
			w.asleep.Store(false)
		}
		next = gridAfter(now)
		tm.Reset(time.Duration(next - now))
	}
}

// wakeLease wakes the lease goroutine if it sleeps for want of a task
// (leaseLoop); the caller has published the task under Worker.mu. It
// never blocks.
func (w *Worker) wakeLease() {
	if w.asleep.CompareAndSwap(true, false) {
		select {
		case w.wake <- struct{}{}:
		default:
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
