package heartbeat

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"fastcall/node/internal/closing"
	"fastcall/rfc"
	"fastcall/wire"
)

// MasterConfig configures a Master.
type MasterConfig struct {
	// MaxTasks bounds the tasks in flight (default 4096); Start past it
	// fails with EBUSY.
	MaxTasks int
	// StartTimeout is the deadline of a task start call whose context has
	// none (default 1s).
	StartTimeout time.Duration
}

// DefaultMasterConfig returns the documented defaults.
func DefaultMasterConfig() MasterConfig {
	return MasterConfig{MaxTasks: 4096, StartTimeout: time.Second}
}

// Master assigns tasks to workers and follows their liveness through a
// Service. A worker declared dead at incarnation X has every task it
// runs under X or below ended with ENODEAD at once, and X becomes its
// fence: what an incarnation at or below the fence accepts or reports is
// rejected with ESTALE. A worker removed has every task in flight ended;
// a worker that declared this node dead at this node's incarnation Y has
// every task this node started under Y or below ended (the worker has
// cancelled them). Only a death this node declared raises a fence: the
// worker's incarnation does not change when only this node refuted, so
// fencing it would refuse the live worker for good. Every task ended by
// a loss, and a task ended while its start was in flight, is cancelled on
// the worker (one-way, best effort). A cancel that does not arrive is
// covered by the worker's task lease: serveCheck confirms only the tasks
// this master holds (see Worker). All methods are safe for concurrent
// use.
type Master struct {
	svc *Service
	ep  *rfc.Endpoint
	cfg MasterConfig

	mu struct {
		closing.Mutex
		tasks map[uint64]*Task
		fence map[netip.AddrPort]uint32 // per worker: highest incarnation declared dead
	}
	// nextID is the last task id issued. It starts at firstID, a random
	// value below 2^63 (so it never wraps to 0), so a restarted master
	// does not issue its predecessor's ids again, whatever its clock did
	// meanwhile: a worker keys a task-cancel by (master address, task id)
	// alone, and a copy of a cancel the previous process sent (held in
	// the network, or replayed within the age bound: the call is
	// idempotent) would cancel the new task of that id. (A start at the
	// wall clock gave the same ids again after the clock was stepped
	// back.)
	firstID uint64
	nextID  atomic.Uint64
	stop    func() // removes the event listener
	stats   masterStats
}

type masterStats struct {
	started, completed, failed, stale, unknown atomic.Uint64
	startRetried, malformed                    atomic.Uint64
}

// MasterStats is a snapshot of a Master's counters.
type MasterStats struct {
	Started   uint64 // tasks accepted by a worker
	Completed uint64 // results applied
	Failed    uint64 // tasks ended by a lost worker (ENODEAD)
	Stale     uint64 // results rejected with ESTALE
	Unknown   uint64 // results for task ids never issued (ENOENT)
	Retried   uint64 // starts refused ESTALE (unrun) and sent once more
	Malformed uint64 // start replies refused as malformed (Start returns EPROTO)
}

// NewMaster registers the master's call numbers (CallTaskProgress,
// CallTaskResult, CallTaskCheck) on the service's endpoint and starts following its
// events. One Master per endpoint.
func NewMaster(svc *Service, cfg MasterConfig) (*Master, error) {
	if cfg.MaxTasks < 1 || cfg.StartTimeout <= 0 {
		return nil, rfc.BadConfig("heartbeat", "MasterConfig", nil, "MaxTasks and StartTimeout must be positive")
	}
	m := &Master{svc: svc, ep: svc.ep, cfg: cfg}
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	m.firstID = binary.BigEndian.Uint64(rb[:]) >> 1
	m.nextID.Store(m.firstID)
	m.mu.tasks = make(map[uint64]*Task)
	m.mu.fence = make(map[netip.AddrPort]uint32)
	calls := []rfc.CallSpec{
		{No: CallTaskProgress, Name: "task-progress", Schema: schemaTaskProgress, Flags: rfc.Idempotent | rfc.OneWay, H: m.serveProgress},
		{No: CallTaskResult, Name: "task-result", Schema: schemaTaskResult, H: m.serveResult},
		// A check is part of the pair's liveness, as a heartbeat is:
		// served ahead of ordinary calls, so that a busy master keeps
		// its workers' leases.
		{No: CallTaskCheck, Name: "task-check", Schema: schemaTaskCheck, Flags: rfc.Idempotent | rfc.Priority, H: m.serveCheck},
	}
	if err := m.ep.RegisterCalls(calls); err != nil {
		return nil, err
	}
	m.stop = svc.OnEvent(m.onEvent)
	return m, nil
}

// Close ends every task in flight with ECLOSED and stops following the
// service. The call numbers stay registered and answer ECLOSED.
func (m *Master) Close() {
	if !m.mu.LockToClose() {
		return
	}
	tasks := m.mu.tasks
	m.mu.tasks = map[uint64]*Task{}
	m.mu.Unlock()
	m.stop()
	for _, t := range slices.SortedFunc(maps.Values(tasks), taskOrder) {
		t.finish(wire.ECLOSED, nil)
	}
}

// Stats returns a snapshot of the counters.
func (m *Master) Stats() MasterStats {
	return MasterStats{Started: m.stats.started.Load(), Completed: m.stats.completed.Load(),
		Failed: m.stats.failed.Load(), Stale: m.stats.stale.Load(), Unknown: m.stats.unknown.Load(),
		Retried: m.stats.startRetried.Load(), Malformed: m.stats.malformed.Load()}
}

// InFlight returns the number of tasks in flight on worker.
func (m *Master) InFlight(worker netip.AddrPort) int {
	worker = rfc.PeerAddr(worker)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.mu.tasks {
		if t.Worker == worker {
			n++
		}
	}
	return n
}

// Start starts a task of the given kind on worker and returns once the
// worker has accepted it. worker must be a member of the service and not
// dead (ENOENT, ENODEAD); EBUSY when MaxTasks are in flight or the worker's
// queue is full; EPROTO for a malformed reply (see startReply; the task is
// cancelled on the worker); otherwise the error of the start call. A task
// whose result the master applied before the start call ended is
// returned with that outcome, whatever the call's error: the worker
// accepted it and ran it.
func (m *Master) Start(ctx context.Context, worker netip.AddrPort, kind uint64, payload []byte) (*Task, error) {
	worker = rfc.PeerAddr(worker) // as the worker's replies and results come from it
	info, ok := m.svc.Member(worker)
	if !ok {
		return nil, wire.ENOENT
	}
	if info.State == StateDead {
		return nil, wire.ENODEAD
	}
	m.svc.Pin(worker) // the pair's heartbeat channel stays direct
	id := m.nextID.Add(1)
	t := newTask(id, worker, kind)
	m.mu.Lock()
	switch {
	case m.mu.Closed:
		m.mu.Unlock()
		return nil, wire.ECLOSED
	case len(m.mu.tasks) >= m.cfg.MaxTasks:
		m.mu.Unlock()
		return nil, wire.EBUSY
	}
	m.mu.tasks[id] = t
	m.mu.Unlock()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.StartTimeout)
		defer cancel()
	}
	mastInc := m.ep.Incarnation()
	t.mu.Lock()
	t.mu.mastInc = mastInc
	t.mu.Unlock()
	ps := paramsBuf(4*sizeU64Param + len(payload))
	ps.Uint64(id)
	ps.Uint64(uint64(mastInc))
	ps.Uint64(kind)
	ps.Bytes(payload)
	var rep rfc.Reply
	err := m.ep.Call(ctx, worker, CallTaskStart, ps, &rep)
	if wire.AsErrno(err) == wire.ESTALE {
		// Refused unrun: the start named an incarnation of the worker
		// below its current one (it refuted a suspicion since this node
		// last heard from it directly), or one this master has left.
		// The refusal carried the worker's incarnation, which the
		// engine now names: one more try.
		m.stats.startRetried.Add(1)
		err = m.ep.Call(ctx, worker, CallTaskStart, ps, &rep)
	}
	var inc uint32
	if err == nil {
		var ok bool
		if inc, ok = startReply(&rep.Packet); !ok {
			m.stats.malformed.Add(1)
			err = wire.EPROTO // accepted, by its word, under no incarnation it can have
		}
	}
	m.mu.Lock()
	t.mu.Lock()
	reported := t.mu.reported
	if err == nil && t.mu.inc == 0 {
		// Set under m.mu, where a worker's loss is applied: a loss event
		// that comes after this sees the incarnation the task runs under.
		t.mu.inc = inc
	}
	t.mu.Unlock()
	switch {
	case reported:
		// The worker's result came in ahead of the answer (a reply lost
		// and resent, the result not), applied under an incarnation
		// above the fence: the worker accepted the task and ran it,
		// whatever the call says since (timed out, or failed ENODEAD
		// when the worker was lost meanwhile). Failing the start would
		// have the caller run the task again, its result dropped.
		err = nil
	case err == nil && inc <= m.mu.fence[worker] && m.mu.fence[worker] != 0:
		err = wire.ESTALE // accepted by an incarnation already given up on
	}
	ended := m.mu.tasks[id] != t // ended by a lost worker, or by its result, while starting
	if err != nil {
		delete(m.mu.tasks, id)
	}
	m.mu.Unlock()
	if err == nil && ended && !reported {
		m.sendCancel(worker, id) // accepted, but given up on here
	}
	if err != nil {
		t.finish(wire.AsErrno(err), nil)
		if e := wire.AsErrno(err); e == wire.ETIMEDOUT || e == wire.ESTALE || e == wire.EPROTO {
			m.sendCancel(worker, id) // it may run there: best effort
		}
		return nil, err
	}
	m.stats.started.Add(1)
	// If the worker was lost while the task was starting, the task has
	// already left the table and its outcome is ENODEAD; if its result
	// came in first, the outcome is the result.
	return t, nil
}

// startReply decodes a task-start reply: the worker incarnation the
// task runs under, the reply header's when the reply carries none. ok is
// false for a reply that carries anything else, or a value past 32 bits,
// which would otherwise be read cut as another incarnation.
func startReply(r *wire.Packet) (uint32, bool) {
	switch {
	case r.NParams() == 0:
		return r.Incarnation, true
	case r.NParams() != 1 || r.Param(tsReplyInc).Type != wire.TypeUint64:
		return 0, false
	}
	return r.Param(tsReplyInc).Uint32()
}

// Cancel asks the worker to cancel t and ends t with ECANCELED. It returns
// the error of the cancel call (the task ends here either way).
func (m *Master) Cancel(ctx context.Context, t *Task) error {
	m.mu.Lock()
	delete(m.mu.tasks, t.ID)
	m.mu.Unlock()
	t.finish(wire.ECANCELED, nil)
	ps := paramsBuf(sizeU64Param)
	ps.Uint64(t.ID)
	return m.ep.Call(ctx, t.Worker, CallTaskCancel, ps, nil)
}

func (m *Master) sendCancel(worker netip.AddrPort, id uint64) {
	ps := paramsBuf(sizeU64Param)
	ps.Uint64(id)
	_ = m.ep.Send(worker, CallTaskCancel, ps)
}

// taskOrder orders tasks by id: they are ended in that order, not in map
// order, so that a run replays.
func taskOrder(a, b *Task) int { return cmp.Compare(a.ID, b.ID) }

// onEvent ends the tasks of a worker that is lost to this master, as
// the Master's doc comment says.
func (m *Master) onEvent(ev Event) {
	if !pairLoss(ev) {
		return
	}
	var ended []*Task
	m.mu.Lock()
	if ev.Kind == EventDead && ev.Incarnation > m.mu.fence[ev.Addr] {
		m.mu.fence[ev.Addr] = ev.Incarnation
	}
	for id, t := range m.mu.tasks {
		if t.Worker != ev.Addr {
			continue
		}
		t.mu.Lock()
		inc, mastInc := t.mu.inc, t.mu.mastInc
		t.mu.Unlock()
		if !endsTask(ev, inc, mastInc) {
			continue // started after the loss
		}
		delete(m.mu.tasks, id)
		ended = append(ended, t)
	}
	m.mu.Unlock()
	slices.SortFunc(ended, taskOrder)
	for _, t := range ended {
		if t.finish(wire.ENODEAD, nil) {
			m.stats.failed.Add(1)
		}
		// Best effort: a worker that still runs the task (it accepted
		// the start after its own view of the loss) stops it. The
		// engine drops it locally for a worker marked dead.
		m.sendCancel(t.Worker, t.ID)
	}
}

// reportedLocked returns the task a worker's report (task-check,
// task-progress, task-result) names, if this master holds it for that
// very start (Task.startedAs) under a worker incarnation above the
// worker's fence. Otherwise the errno says why: ECLOSED once closed,
// EINVAL for an incarnation past 32 bits, ENOENT for an id never
// issued, ESTALE for a task ended since (or an earlier process's: it
// names a master incarnation below this one's), held for another start,
// or run under a fenced incarnation. The caller
// holds m.mu.
func (m *Master) reportedLocked(req *rfc.Request) (*Task, wire.Errno) {
	if m.mu.Closed {
		return nil, wire.ECLOSED
	}
	id := req.Param(rpParamID).Uint64()
	inc, iok := req.Param(rpParamInc).Uint32()
	mastInc, mok := req.Param(rpParamMastInc).Uint32()
	if !iok || !mok {
		return nil, wire.EINVAL
	}
	t := m.mu.tasks[id]
	if t == nil {
		// Issued here and ended, or a task of an earlier process of
		// this master (its ids are apart from this one's, its
		// incarnation below).
		if id > m.firstID && id <= m.nextID.Load() || mastInc < m.ep.Incarnation() {
			return nil, wire.ESTALE
		}
		return nil, wire.ENOENT
	}
	fence := m.mu.fence[t.Worker]
	if !t.startedAs(req.From, mastInc, inc) || (fence != 0 && inc <= fence) {
		return nil, wire.ESTALE
	}
	return t, wire.OK
}

// serveResult applies a worker's result, unless the task was given up on.
func (m *Master) serveResult(req *rfc.Request, _ *wire.Params) wire.Errno {
	errno, ok := req.Param(trParamErrno).Uint16()
	if !ok {
		return wire.EINVAL // cut to an Errno it would read as another outcome, OK included
	}
	m.mu.Lock()
	t, e := m.reportedLocked(req)
	if e != wire.OK {
		m.mu.Unlock()
		switch e {
		case wire.ESTALE:
			m.stats.stale.Add(1)
		case wire.ENOENT:
			m.stats.unknown.Add(1)
		}
		return e
	}
	t.mu.Lock()
	if t.mu.inc == 0 {
		t.mu.inc, _ = req.Param(rpParamInc).Uint32() // the result overtook the start reply; in range (reportedLocked)
	}
	t.mu.reported = true // under m.mu, before the task leaves the table: Start looks under m.mu
	t.mu.Unlock()
	delete(m.mu.tasks, t.ID)
	m.mu.Unlock()
	data := append([]byte(nil), req.Param(trParamData).Bytes()...)
	if t.finish(wire.Errno(errno), data) {
		m.stats.completed.Add(1)
	}
	return wire.OK
}

// serveCheck renews a worker's lease on a task: OK only while this
// master holds the task for the start the check names (see
// reportedLocked). A restarted master holds none of its predecessor's
// tasks: it answers ENOENT, or ESTALE when it reused the id, so the
// worker cancels the task (see Worker).
func (m *Master) serveCheck(req *rfc.Request, _ *wire.Params) wire.Errno {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, e := m.reportedLocked(req)
	return e
}

// serveProgress records a worker's progress report on the task it
// names (see reportedLocked).
func (m *Master) serveProgress(req *rfc.Request, _ *wire.Params) wire.Errno {
	m.mu.Lock()
	t, e := m.reportedLocked(req)
	m.mu.Unlock()
	if e != wire.OK {
		return e
	}
	t.mu.Lock()
	t.mu.progress = req.Param(tpParamDone).Uint64()
	t.mu.total = req.Param(tpParamTotal).Uint64()
	t.mu.Unlock()
	return wire.OK
}
