package heartbeat

import (
	"cmp"
	"context"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/node/internal/closing"
	"fastcall/rfc"
	"fastcall/wire"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	// Runners is the number of goroutines running task code (default 4),
	// started in NewWorker.
	Runners int
	// Queue bounds the tasks accepted but not yet running (default 64);
	// a start past it is answered EBUSY.
	Queue int
	// ResultTimeout is the deadline of the call delivering a result
	// (default 2s).
	ResultTimeout time.Duration
}

// DefaultWorkerConfig returns the documented defaults.
func DefaultWorkerConfig() WorkerConfig {
	return WorkerConfig{Runners: 4, Queue: 64, ResultTimeout: 2 * time.Second}
}

// TaskFunc runs one task. It must return soon after ctx is cancelled
// (the master is lost or cancelled the task). It returns the result bytes
// and an error number; a result that does not fit one datagram is sent as
// EMSGSIZE.
type TaskFunc func(ctx context.Context, t *TaskInfo) ([]byte, wire.Errno)

// TaskInfo describes a running task to its TaskFunc.
type TaskInfo struct {
	ID                uint64
	Kind              uint64
	Payload           []byte
	Master            netip.AddrPort
	MasterIncarnation uint32
	Incarnation       uint32 // this worker's incarnation when it accepted the task
	w                 *Worker
}

// Progress reports progress to the master (one datagram, not retried).
func (t *TaskInfo) Progress(done, total uint64) error {
	ps := paramsBuf(tpParams * sizeU64Param)
	t.putReport(ps)
	ps.Uint64(done)
	ps.Uint64(total)
	return t.w.ep.Send(t.Master, CallTaskProgress, ps)
}

// putReport writes what opens every report about t (task-check,
// task-progress, task-result): the start it is about.
func (t *TaskInfo) putReport(ps *wire.Params) {
	ps.Uint64(t.ID)
	ps.Uint64(uint64(t.MasterIncarnation))
	ps.Uint64(uint64(t.Incarnation))
}

// workTask is a task held by a Worker from its start call until its
// result is sent.
type workTask struct {
	TaskInfo
	ctx     context.Context
	cancel  context.CancelFunc
	aborted atomic.Bool // cancelled because the master was lost or the lease lapsed

	// The task's lease (see Worker). Atomics: the engine goroutine that
	// completes a check updates them without taking Worker.mu.
	leased   atomic.Int64 // ep.Now() when the master last held the task: the acceptance, then the send time of a confirmed check
	checked  int64        // ep.Now() when the last check was sent; set by serveStart before the task is published, then leaseLoop only (outside Worker.mu)
	checking atomic.Bool  // a check is in flight

	// confirmed is set by the first confirmed check: the task's code runs
	// only after it (see serveStart). handed is set when the task goes to
	// the runners (Worker.hand): once confirmed, or once ended unconfirmed
	// (a runner then reports it cancelled).
	confirmed atomic.Bool
	handed    atomic.Bool
}

type workKey struct {
	master netip.AddrPort
	id     uint64
}

// Worker runs tasks for masters that are members of its Service. When a
// master is declared dead or removed, or declares this node dead, every
// task of that master is cancelled (its context ends). A stale start is
// refused with ESTALE (see serveStart).
//
// A start never authorises its task by itself: it may have been held
// (in the network, or in this node's socket while the node was stopped)
// long after the master gave the task up, and it looks fresh. The
// worker sends a CallTaskCheck at once when it accepts a task, and the
// task's code runs only after a check sent at or after the acceptance
// is confirmed, and only while its lease is current.
//
// Every task held (queued or running) is under a lease: once per
// service Interval the worker asks the master (CallTaskCheck) whether it
// still holds the task. A confirmation renews the lease from the time
// the check was sent; an answer ENOENT, ESTALE or ECLOSED (the master
// ended the task, restarted, or closed) cancels the task at once; a task
// whose lease was not renewed within DetectBound of the service's
// configuration is cancelled. So a task never runs longer than
// DetectBound plus one Tick after its master ended it, whatever was
// lost or held on the way: every time is measured on this node's clock
// from a send of its own, so the rule needs no clock shared with the
// master. All methods are safe for concurrent use.
type Worker struct {
	svc *Service
	ep  *rfc.Endpoint
	cfg WorkerConfig
	fn  TaskFunc

	mu struct {
		closing.Mutex
		tasks   map[workKey]*workTask
		deadAt  map[netip.AddrPort]uint32 // per master: highest incarnation this node declared it dead at
		waiting int                       // tasks accepted and not yet taken by a runner; at most WorkerConfig.Queue
	}
	queue chan *workTask     // tasks handed to the runners; capacity WorkerConfig.Queue, so a send (at most one per waiting task) never blocks
	ctx   context.Context    // parent of the result calls; ended by Close
	end   context.CancelFunc // ends ctx
	stop  func()
	stats workerStats
	// wake rouses the lease goroutine while it sleeps for want of a
	// task (asleep); one slot (wakeLease).
	wake   chan struct{}
	asleep atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup
}

type workerStats struct {
	started, finished, aborted, stale, lost, refused atomic.Uint64
	wakes                                            atomic.Uint64
}

// WorkerStats is a snapshot of a Worker's counters.
type WorkerStats struct {
	Started  uint64 // tasks accepted
	Finished uint64 // results the master applied
	Aborted  uint64 // tasks cancelled because their master was lost or their lease lapsed
	Stale    uint64 // results the master rejected with ESTALE
	Lost     uint64 // results that could not be delivered
	Refused  uint64 // stale starts refused with ESTALE, unrun
	Wakes    uint64 // times the lease goroutine woke: its ticks, and the wake-ups for a task while it slept
}

// NewWorker registers the worker's call numbers (CallTaskStart,
// CallTaskCancel) on the service's endpoint, starts cfg.Runners runner
// goroutines and the lease goroutine, and follows the service's events.
// One Worker per endpoint.
func NewWorker(svc *Service, cfg WorkerConfig, fn TaskFunc) (*Worker, error) {
	if cfg.Runners < 1 || cfg.Runners > 4096 || cfg.Queue < 1 || cfg.ResultTimeout <= 0 || fn == nil {
		return nil, rfc.BadConfig("heartbeat", "WorkerConfig", nil, "Runners 1-4096, Queue and ResultTimeout positive, fn set")
	}
	w := &Worker{svc: svc, ep: svc.ep, cfg: cfg, fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.ctx, w.end = context.WithCancel(context.Background())
	w.mu.tasks = make(map[workKey]*workTask)
	w.mu.deadAt = make(map[netip.AddrPort]uint32)
	w.queue = make(chan *workTask, cfg.Queue)
	calls := []rfc.CallSpec{
		{No: CallTaskStart, Name: "task-start", Schema: schemaTaskStart, H: w.serveStart},
		{No: CallTaskCancel, Name: "task-cancel", Schema: schemaTaskCancel, Flags: rfc.Idempotent, H: w.serveCancel},
	}
	if err := w.ep.RegisterCalls(calls); err != nil {
		return nil, err
	}
	w.stop = svc.OnEvent(w.onEvent)
	// Every long-lived goroutine of the worker starts here.
	for i := 0; i < cfg.Runners; i++ {
		w.wg.Add(1)
		go w.runLoop()
	}
	w.wg.Add(1)
	go w.leaseLoop()
	return w, nil
}

// Close cancels every task and the result calls in flight, stops the
// runners and the lease goroutine and waits for them (a runner first
// waits for its task code to return). The master of every task so ended
// is sent a task-result ECLOSED (not waited for): the node may stay a
// live member, and then nothing else would end the task there.
func (w *Worker) Close() {
	if !w.mu.LockToClose() {
		return
	}
	for _, t := range slices.SortedFunc(maps.Values(w.mu.tasks), workOrder) {
		t.cancel()
	}
	w.mu.Unlock()
	w.end()
	w.stop()
	close(w.done)
	w.wg.Wait()
	// The node may stay a live member: no loss event tells the master
	// that these tasks ended, and it holds no lease of its own. The
	// tasks the runners left unreported (queued, unconfirmed, or ended
	// by this Close) are reported ECLOSED.
	w.mu.Lock()
	left := slices.SortedFunc(maps.Values(w.mu.tasks), workOrder)
	clear(w.mu.tasks)
	w.mu.Unlock()
	for _, t := range left {
		w.reportClosed(t)
	}
}

// reportClosed tells t's master that t ended because this worker
// closed: a task-result ECLOSED, sent without waiting for the answer (a
// master that gave the task up answers ESTALE).
func (w *Worker) reportClosed(t *workTask) {
	ps := paramsBuf((tkParams+1)*sizeU64Param + wire.ParamHdrSize)
	t.putReport(ps)
	ps.Uint64(uint64(wire.ECLOSED))
	ps.Bytes(nil)
	err := w.ep.GoFunc(t.Master, CallTaskResult, ps, w.cfg.ResultTimeout, func(p *rfc.Pending) {
		switch wire.AsErrno(p.Err()) {
		case wire.OK:
			w.stats.finished.Add(1)
		case wire.ESTALE:
			w.stats.stale.Add(1)
		default:
			w.stats.lost.Add(1)
		}
	})
	if err != nil {
		w.stats.lost.Add(1)
	}
}

// Running returns the number of tasks accepted and not yet reported.
func (w *Worker) Running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.tasks)
}

// Stats returns a snapshot of the counters.
func (w *Worker) Stats() WorkerStats {
	return WorkerStats{Started: w.stats.started.Load(), Finished: w.stats.finished.Load(),
		Aborted: w.stats.aborted.Load(), Stale: w.stats.stale.Load(), Lost: w.stats.lost.Load(),
		Refused: w.stats.refused.Load(), Wakes: w.stats.wakes.Load()}
}

// serveStart accepts a task from a master that is a live member. A
// start that is stale is refused with ESTALE, unrun: one addressed to an
// incarnation of this worker below its current one (the request's
// PeerInc: the master may have declared that incarnation dead and given
// the task up, and this node has refuted since), or one sent under a
// master incarnation at or below one this worker declared that master
// dead at (the master has ended what it started under it; the worker's
// own loss handler cancelled the rest). The checks and the
// insertion hold w.mu, as onEvent does: a loss either comes before the
// check, and the start is refused, or after the insertion, and cancels
// the task. A start accepted is not yet confirmed: its first check goes
// out here, and a runner runs its code only once a check is confirmed
// (see Worker).
func (w *Worker) serveStart(req *rfc.Request, rep *wire.Params) wire.Errno {
	mastInc, ok := req.Param(tsParamMastInc).Uint32()
	if !ok {
		return wire.EINVAL
	}
	t := &workTask{TaskInfo: TaskInfo{
		ID: req.Param(tsParamID).Uint64(), Kind: req.Param(tsParamKind).Uint64(),
		Payload: append([]byte(nil), req.Param(tsParamPayload).Bytes()...), Master: req.From,
		MasterIncarnation: mastInc, w: w,
	}}
	key := workKey{req.From, t.ID}
	w.mu.Lock()
	if w.mu.Closed {
		w.mu.Unlock()
		return wire.ECLOSED
	}
	info, ok := w.svc.Member(req.From)
	inc := w.ep.Incarnation()
	switch {
	case !ok:
		w.mu.Unlock()
		return wire.ENOENT
	case info.State == StateDead:
		w.mu.Unlock()
		return wire.ENODEAD
	case req.PeerInc != 0 && req.PeerInc < inc, t.MasterIncarnation <= w.mu.deadAt[req.From]:
		w.mu.Unlock()
		w.stats.refused.Add(1)
		return wire.ESTALE
	case w.mu.tasks[key] != nil:
		w.mu.Unlock()
		return wire.EEXIST
	case w.mu.waiting >= w.cfg.Queue:
		w.mu.Unlock()
		return wire.EBUSY
	}
	t.Incarnation = inc
	now := w.ep.Now()
	t.checked = now
	t.leased.Store(now)
	// The start may have waited out a loss before it was read (held in
	// the network, or in this node's socket while it was stopped): it
	// looks fresh, since the engine measures a budget from arrival, long
	// after the master gave the task up. Its code runs only once a check
	// sent from now on confirms that the master holds it; the first
	// check goes out at once, and the task goes to the runners when it
	// is confirmed (checkDone), so that no runner waits on it.
	t.checking.Store(true)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	w.mu.tasks[key] = t
	w.mu.waiting++
	w.mu.Unlock()
	w.wakeLease()
	w.svc.Pin(req.From) // the pair's heartbeat channel stays direct
	w.stats.started.Add(1)
	w.sendCheck(t, now)
	rep.Uint64(uint64(inc))
	return wire.OK
}

// serveCancel cancels one task of the calling master.
func (w *Worker) serveCancel(req *rfc.Request, _ *wire.Params) wire.Errno {
	key := workKey{req.From, req.Param(tcParamID).Uint64()}
	w.mu.Lock()
	t := w.mu.tasks[key]
	w.mu.Unlock()
	if t == nil {
		return wire.ENOENT
	}
	t.cancel()
	w.hand(t)
	return wire.OK
}

// onEvent cancels the tasks of a master that is lost to this worker.
func (w *Worker) onEvent(ev Event) {
	if !pairLoss(ev) {
		return
	}
	w.mu.Lock()
	switch {
	case ev.Kind == EventDead && ev.Incarnation > w.mu.deadAt[ev.Addr]:
		w.mu.deadAt[ev.Addr] = ev.Incarnation
	case ev.Kind == EventRemoved:
		delete(w.mu.deadAt, ev.Addr) // a non-member's starts are refused ENOENT
	}
	var ts []*workTask
	for k, t := range w.mu.tasks {
		if k.master != ev.Addr || !endsTask(ev, t.MasterIncarnation, t.Incarnation) {
			continue // another master's, or started after the loss
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, workOrder)
	for _, t := range ts {
		w.abort(t)
	}
	w.mu.Unlock()
}

// workOrder orders tasks by (id, master): tasks are cancelled and checked
// in that order, not in map order, so that a run replays.
func workOrder(a, b *workTask) int {
	if c := cmp.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	return a.Master.Compare(b.Master)
}

// abort cancels t because its master is lost to this worker or its
// lease lapsed. It takes no lock.
func (w *Worker) abort(t *workTask) {
	if !t.aborted.Swap(true) {
		w.stats.aborted.Add(1)
	}
	t.cancel()
	w.hand(t)
}

// hand gives t to the runners, once: when a check confirms it, or when
// it ends unconfirmed (the runner reports it cancelled). It never
// blocks (see Worker.queue) and takes no lock.
func (w *Worker) hand(t *workTask) {
	if !t.handed.Swap(true) {
		w.queue <- t
	}
}

// runLoop is a runner goroutine: it runs queued tasks and sends their
// results.
func (w *Worker) runLoop() {
	defer w.wg.Done()
	buf := make([]byte, w.ep.Config().MaxDatagram)
	lease := int64(DetectBound(w.svc.Config()))
	var ps wire.Params
	var rep rfc.Reply
	for {
		var t *workTask
		select {
		case t = <-w.queue:
		case <-w.done:
			return
		}
		w.mu.Lock()
		w.mu.waiting--
		w.mu.Unlock()
		if w.ep.Now()-t.leased.Load() > lease {
			w.abort(t) // confirmed, then stopped here past its lease
		}
		var res []byte
		e := wire.ECANCELED
		if t.confirmed.Load() && t.ctx.Err() == nil {
			res, e = invokeTask(w.fn, t)
		}
		t.cancel()
		w.mu.Lock()
		closed := w.mu.Closed
		if !closed {
			delete(w.mu.tasks, workKey{t.Master, t.ID})
		}
		w.mu.Unlock()
		if closed {
			continue // Close reports it (reportClosed)
		}
		w.sendResult(t, res, e, buf, &ps, &rep)
	}
}

// sendResult delivers a result to the master. A master that gave the
// task up answers ESTALE; that is counted, not retried.
func (w *Worker) sendResult(t *workTask, res []byte, e wire.Errno, buf []byte, ps *wire.Params, rep *rfc.Reply) {
	build := func(res []byte, e wire.Errno) {
		ps.Reset(buf)
		t.putReport(ps)
		ps.Uint64(uint64(e))
		ps.Bytes(res)
	}
	build(res, e)
	if ps.Err() != wire.OK || ps.Len() > w.ep.Config().MaxDatagram-wire.HeaderSize {
		build(nil, wire.EMSGSIZE)
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.ResultTimeout)
	err := w.ep.Call(ctx, t.Master, CallTaskResult, ps, rep)
	cancel()
	switch wire.AsErrno(err) {
	case wire.OK:
		w.stats.finished.Add(1)
	case wire.ESTALE:
		w.stats.stale.Add(1)
	default:
		if w.ctx.Err() != nil {
			// Ended by Close: the master may not have the result
			// (if it has, it answers this one ESTALE).
			w.reportClosed(t)
			return
		}
		w.stats.lost.Add(1)
	}
}

// invokeTask runs task code, turning a panic into EFAULT.
func invokeTask(fn TaskFunc, t *workTask) (res []byte, e wire.Errno) {
	defer func() {
		if recover() != nil {
			res, e = nil, wire.EFAULT
		}
	}()
	return fn(t.ctx, &t.TaskInfo)
}
