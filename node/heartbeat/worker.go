package heartbeat

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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
	ps := paramsBuf(4 * sizeU64Param)
	ps.Uint64(t.ID)
	ps.Uint64(uint64(t.Incarnation))
	ps.Uint64(done)
	ps.Uint64(total)
	return t.w.ep.Send(t.Master, CallTaskProgress, ps)
}

// workTask is a task held by a Worker from its start call until its
// result is sent.
type workTask struct {
	TaskInfo
	ctx     context.Context
	cancel  context.CancelFunc
	aborted atomic.Bool // cancelled because the master was lost
}

type workKey struct {
	master netip.AddrPort
	id     uint64
}

// Worker runs tasks for masters that are members of its Service. When a
// master is declared dead or removed, or declares this node dead, every
// task of that master is cancelled (its context ends). A stale start is
// refused with ESTALE (see serveStart). All methods are safe for
// concurrent use.
type Worker struct {
	svc *Service
	ep  *rfc.Endpoint
	cfg WorkerConfig
	fn  TaskFunc

	mu struct {
		sync.Mutex
		tasks  map[workKey]*workTask
		deadAt map[netip.AddrPort]uint32 // per master: highest incarnation this node declared it dead at
		closed bool
	}
	queue chan *workTask // bounded by WorkerConfig.Queue
	stop  func()
	stats workerStats
	done  chan struct{}
	wg    sync.WaitGroup
}

type workerStats struct {
	started, finished, aborted, stale, lost, refused atomic.Uint64
}

// WorkerStats is a snapshot of a Worker's counters.
type WorkerStats struct {
	Started  uint64 // tasks accepted
	Finished uint64 // results the master applied
	Aborted  uint64 // tasks cancelled because their master was lost
	Stale    uint64 // results the master rejected with ESTALE
	Lost     uint64 // results that could not be delivered
	Refused  uint64 // stale starts refused with ESTALE, unrun
}

// NewWorker registers the worker's call numbers (CallTaskStart,
// CallTaskCancel) on the service's endpoint, starts cfg.Runners runner
// goroutines, and follows the service's events. One Worker per endpoint.
func NewWorker(svc *Service, cfg WorkerConfig, fn TaskFunc) (*Worker, error) {
	if cfg.Runners < 1 || cfg.Runners > 4096 || cfg.Queue < 1 || cfg.ResultTimeout <= 0 || fn == nil {
		return nil, &ConfigError{"WorkerConfig", "Runners 1-4096, Queue and ResultTimeout positive, fn set"}
	}
	w := &Worker{svc: svc, ep: svc.ep, cfg: cfg, fn: fn, done: make(chan struct{})}
	w.mu.tasks = make(map[workKey]*workTask)
	w.mu.deadAt = make(map[netip.AddrPort]uint32)
	w.queue = make(chan *workTask, cfg.Queue)
	if err := w.ep.Register(CallTaskStart, "task-start", schemaTaskStart, 0, w.serveStart); err != nil {
		return nil, err
	}
	if err := w.ep.Register(CallTaskCancel, "task-cancel", schemaTaskCancel, rfc.Idempotent, w.serveCancel); err != nil {
		return nil, err
	}
	w.stop = svc.OnEvent(w.onEvent)
	// Every long-lived goroutine of the worker starts here.
	for i := 0; i < cfg.Runners; i++ {
		w.wg.Add(1)
		go w.runLoop()
	}
	return w, nil
}

// Close cancels every task, stops the runners and waits for them (a
// runner first waits for its task code to return).
func (w *Worker) Close() {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return
	}
	w.mu.closed = true
	for _, t := range w.mu.tasks {
		t.cancel()
	}
	w.mu.Unlock()
	w.stop()
	close(w.done)
	w.wg.Wait()
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
		Refused: w.stats.refused.Load()}
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
// the task.
func (w *Worker) serveStart(req *rfc.Request, rep *wire.Params) wire.Errno {
	t := &workTask{TaskInfo: TaskInfo{
		ID: req.Param(tsParamID).Uint64(), Kind: req.Param(tsParamKind).Uint64(),
		Payload: append([]byte(nil), req.Param(tsParamPayload).Bytes()...), Master: req.From,
		MasterIncarnation: uint32(req.Param(tsParamMastInc).Uint64()), w: w,
	}}
	key := workKey{req.From, t.ID}
	w.mu.Lock()
	if w.mu.closed {
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
	}
	t.Incarnation = inc
	t.ctx, t.cancel = context.WithCancel(context.Background())
	select {
	case w.queue <- t:
	default:
		w.mu.Unlock()
		t.cancel()
		return wire.EBUSY
	}
	w.mu.tasks[key] = t
	w.mu.Unlock()
	w.svc.Pin(req.From) // the pair's heartbeat channel stays direct
	w.stats.started.Add(1)
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
	return wire.OK
}

// onEvent cancels the tasks of a master that is lost to this worker.
func (w *Worker) onEvent(ev Event) {
	switch ev.Kind {
	case EventDead, EventRemoved, EventDeclaredDeadBy:
	default:
		return
	}
	w.mu.Lock()
	switch {
	case ev.Kind == EventDead && ev.Incarnation > w.mu.deadAt[ev.Addr]:
		w.mu.deadAt[ev.Addr] = ev.Incarnation
	case ev.Kind == EventRemoved:
		delete(w.mu.deadAt, ev.Addr) // a non-member's starts are refused ENOENT
	}
	for k, t := range w.mu.tasks {
		if k.master != ev.Addr {
			continue
		}
		if ev.Kind == EventDeclaredDeadBy && t.Incarnation > ev.Incarnation {
			continue // accepted after this node rejoined
		}
		if !t.aborted.Swap(true) {
			w.stats.aborted.Add(1)
		}
		t.cancel()
	}
	w.mu.Unlock()
}

// runLoop is a runner goroutine: it runs queued tasks and sends their
// results.
func (w *Worker) runLoop() {
	defer w.wg.Done()
	buf := make([]byte, w.ep.Config().MaxDatagram)
	var ps wire.Params
	var rep rfc.Reply
	for {
		var t *workTask
		select {
		case t = <-w.queue:
		case <-w.done:
			return
		}
		var res []byte
		e := wire.ECANCELED
		if t.ctx.Err() == nil {
			res, e = invokeTask(w.fn, t)
		}
		t.cancel()
		w.mu.Lock()
		delete(w.mu.tasks, workKey{t.Master, t.ID})
		closed := w.mu.closed
		w.mu.Unlock()
		if closed {
			continue
		}
		w.sendResult(t, res, e, buf, &ps, &rep)
	}
}

// sendResult delivers a result to the master. A master that gave the
// task up answers ESTALE; that is counted, not retried.
func (w *Worker) sendResult(t *workTask, res []byte, e wire.Errno, buf []byte, ps *wire.Params, rep *rfc.Reply) {
	build := func(res []byte, e wire.Errno) {
		ps.Reset(buf)
		ps.Uint64(t.ID)
		ps.Uint64(uint64(t.Incarnation))
		ps.Uint64(uint64(e))
		ps.Bytes(res)
	}
	build(res, e)
	if ps.Err() != wire.OK || ps.Len() > w.ep.Config().MaxDatagram-wire.HeaderSize {
		build(nil, wire.EMSGSIZE)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ResultTimeout)
	err := w.ep.Call(ctx, t.Master, CallTaskResult, ps, rep)
	cancel()
	switch wire.AsErrno(err) {
	case wire.OK:
		w.stats.finished.Add(1)
	case wire.ESTALE:
		w.stats.stale.Add(1)
	default:
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
