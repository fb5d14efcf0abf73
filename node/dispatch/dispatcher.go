package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"fastcall/node/internal/closing"
	"fastcall/rfc"
	"fastcall/wire"
)

// Dispatcher fans operations out to targets through one rfc.Endpoint. All
// methods are safe for concurrent use.
type Dispatcher struct {
	ep       *rfc.Endpoint
	cfg      Config
	log      *slog.Logger
	markers  markerLock
	instance uint64                  // random; names this dispatcher in markers
	remoteOK map[netip.AddrPort]bool // Config.RemoteTargets as rfc.PeerAddr names them; read-only after Start
	// nextID is the last operation id given. It starts at a random
	// value below 2^63 (so it never wraps to 0), so a restarted
	// dispatcher does not give its predecessor's ids again, whatever its
	// clock did meanwhile: a client asking for the status of an
	// operation of the previous process gets ENOENT, not the status of
	// another operation. (A start at the wall clock gave the same ids
	// again after the clock was stepped back.)
	nextID atomic.Uint64

	queue    sendQueue
	gatherQ  chan inflight   // sent calls for the gatherer; bounded by the endpoint's MaxPending
	releaseQ chan *operation // finished operations for the releaser; bounded by MaxActive
	stats    dispatchStats

	mu struct {
		closing.Mutex
		ops     map[uint64]*operation // active and retained
		active  int                   // accepted and not yet done, reservations included
		retired []*operation          // done, oldest first
	}

	// relCtx bounds the releaser's releases: Close cancels it once
	// closeReleaseBudget has passed, a release under way included.
	relCtx    context.Context
	relCancel context.CancelFunc

	done        chan struct{} // closed by Close: the senders stop
	gatherStop  chan struct{} // closed by Close after the senders ended: the gatherer drains and stops
	releaseStop chan struct{} // closed by Close last: the releaser drains and stops
	sendWG      sync.WaitGroup
	gatherWG    sync.WaitGroup
	relWG       sync.WaitGroup
}

// dispatchStats are the dispatcher's counters.
type dispatchStats struct {
	submitted, conflicts, busy  atomic.Uint64
	sent, sendBusy              atomic.Uint64
	targetsOK, targetsFailed    atomic.Uint64
	opsDone, releaseFailed      atomic.Uint64
	markerErrors, remoteSubmits atomic.Uint64
	remoteRefused               atomic.Uint64
}

// Stats is a snapshot of the dispatcher's counters and queue.
type Stats struct {
	Submitted     uint64 // operations accepted
	Conflicts     uint64 // operations refused with ECONFLICT
	Busy          uint64 // operations refused with EBUSY (queue or MaxActive)
	MarkerErrors  uint64 // operations refused because the marker store failed
	Sent          uint64 // calls sent
	SendBusy      uint64 // sends retried because the endpoint had no free call slot
	TargetsOK     uint64 // targets that answered OK
	TargetsFailed uint64 // targets with any other outcome
	OpsDone       uint64 // operations done
	ReleaseFailed uint64 // markers left to their TTL because the release failed
	RemoteSubmits uint64 // operations accepted through the SUBMIT call
	RemoteRefused uint64 // SUBMIT calls refused EPERM: a target outside Config.RemoteTargets or a call of fastcall's own services
	Queued        int    // calls waiting to be sent
	Active        int    // operations not yet done
	Retained      int    // done operations whose status is kept
}

// Start makes a dispatcher on ep with its markers in store, registers the
// dispatch call numbers on ep (so it runs once per endpoint) and starts
// its goroutines: Config.Senders senders, one gatherer, one releaser.
func Start(ep *rfc.Endpoint, cfg Config, store MarkerStore) (*Dispatcher, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if ep == nil || store == nil {
		return nil, wire.EINVAL
	}
	d := &Dispatcher{ep: ep, cfg: cfg, log: cfg.Logger, done: make(chan struct{}),
		gatherStop: make(chan struct{}), releaseStop: make(chan struct{})}
	if d.log == nil {
		d.log = slog.Default()
	}
	var rb [16]byte
	_, _ = rand.Read(rb[:])
	d.instance = binary.BigEndian.Uint64(rb[:8])
	d.nextID.Store(binary.BigEndian.Uint64(rb[8:]) >> 1)
	d.markers = markerLock{store: store, prefix: cfg.KeyPrefix, maxHolders: cfg.MaxHolders, nowMs: wallMs}
	d.queue.init(cfg.QueueLen)
	d.relCtx, d.relCancel = context.WithCancel(context.Background())
	d.gatherQ = make(chan inflight, ep.Config().MaxPending)
	d.releaseQ = make(chan *operation, cfg.MaxActive)
	d.mu.ops = make(map[uint64]*operation)
	d.remoteOK = make(map[netip.AddrPort]bool, len(cfg.RemoteTargets))
	for _, a := range cfg.RemoteTargets {
		d.remoteOK[rfc.PeerAddr(a)] = true
	}
	if err := d.registerCalls(); err != nil {
		d.relCancel()
		return nil, err
	}
	for i := 0; i < cfg.Senders; i++ {
		d.sendWG.Add(1)
		go d.sendLoop()
	}
	d.gatherWG.Add(1)
	go d.gatherLoop()
	d.relWG.Add(1)
	go d.releaseLoop()
	d.log.Debug("dispatcher up", "addr", ep.Addr().String(), "senders", cfg.Senders, "queue", cfg.QueueLen)
	return d, nil
}

// Endpoint returns the dispatcher's endpoint.
func (d *Dispatcher) Endpoint() *rfc.Endpoint { return d.ep }

// Config returns the configuration the dispatcher runs with.
func (d *Dispatcher) Config() Config { return d.cfg }

// Close stops the dispatcher: Submit answers ECLOSED from now on; calls
// not yet sent and calls in flight end with ECLOSED; the markers of the
// operations so ended are released within a bounded time (what is not
// released expires by its TTL), except those of operations with a call
// in flight, which may still run at its target: they stay to their
// expiry; every goroutine ends. Close waits for the
// goroutines and is idempotent. The dispatch call numbers stay registered
// on the endpoint: SUBMIT answers ECLOSED, STATUS the retained operations
// (TestCallsAfterClose).
func (d *Dispatcher) Close() error {
	if !d.mu.LockToClose() {
		return nil
	}
	d.mu.Unlock()
	// Every release from now on, the one under way included, ends
	// within the budget; what is not released lapses at its expiry.
	budget := time.AfterFunc(closeReleaseBudget, d.relCancel)
	defer budget.Stop()
	defer d.relCancel()
	close(d.done)
	d.sendWG.Wait()
	close(d.gatherStop)
	d.gatherWG.Wait()
	now := time.Now()
	for {
		c, ok := d.queue.take(d.cfg.QueueLen)
		if !ok {
			break
		}
		for i := c.from; i < c.to; i++ {
			d.finish(c.op, i, wire.ECLOSED, now)
		}
	}
	close(d.releaseStop)
	d.relWG.Wait()
	return nil
}

// check validates op and resolves every target's call.
func (d *Dispatcher) check(op *Op) ([]Call, wire.Errno) {
	if len(op.Resource) == 0 || len(op.Resource) > MaxResource || !utf8.ValidString(op.Resource) {
		return nil, wire.EINVAL
	}
	if op.Kind == KindInvalid || op.Kind >= kindLimit {
		return nil, wire.EINVAL
	}
	if len(op.Targets) == 0 {
		return nil, wire.EINVAL
	}
	if len(op.Targets) > d.cfg.MaxTargets {
		return nil, wire.ENOSPC
	}
	if op.Deadline < 0 || op.Deadline > d.cfg.MaxDeadline {
		return nil, wire.EINVAL
	}
	maxSeg := d.ep.Config().MaxDatagram - wire.HeaderSize
	checkCall := func(c *Call) wire.Errno {
		if c.No == 0 {
			return wire.EINVAL
		}
		if len(c.Seg) > maxSeg {
			return wire.EMSGSIZE
		}
		n, r := wire.CheckSegment(c.Seg)
		if r != wire.ReasonNone || n != c.Count {
			return wire.EINVAL
		}
		return wire.OK
	}
	var common Call
	calls := make([]Call, len(op.Targets))
	seen := make(map[netip.AddrPort]struct{}, len(op.Targets))
	for i := range op.Targets {
		t := &op.Targets[i]
		if !t.Addr.IsValid() || t.Addr.Port() == 0 {
			return nil, wire.EINVAL
		}
		a := rfc.PeerAddr(t.Addr)
		if _, dup := seen[a]; dup {
			return nil, wire.EINVAL // one call per target
		}
		seen[a] = struct{}{}
		if t.Call.No != 0 {
			if e := checkCall(&t.Call); e != wire.OK {
				return nil, e
			}
			calls[i] = Call{No: t.Call.No, Seg: append([]byte(nil), t.Call.Seg...), Count: t.Call.Count}
			continue
		}
		if common.No == 0 {
			if e := checkCall(&op.Call); e != wire.OK {
				return nil, e
			}
			common = Call{No: op.Call.No, Seg: append([]byte(nil), op.Call.Seg...), Count: op.Call.Count}
		}
		calls[i] = common
	}
	return calls, wire.OK
}

// Submit accepts an operation and returns its id once the conflict marker
// is set and its calls are queued; it does not wait for any target. ctx
// bounds the marker's compare-and-set only. Errors (wire.Errno): EINVAL
// (a malformed operation, a target named twice), ENOSPC (more than MaxTargets targets, or the
// marker already has MaxHolders holders), EMSGSIZE (a call's parameters
// do not fit a datagram), EBUSY (the send queue has no room for all the
// calls, or MaxActive operations are active), ECONFLICT (a conflicting
// operation holds the resource; nothing is sent), ECLOSED, or the marker
// store's error (ETIMEDOUT, EPROTO, EAGAIN...).
func (d *Dispatcher) Submit(ctx context.Context, op *Op) (uint64, error) {
	calls, e := d.check(op)
	if e != wire.OK {
		return 0, e
	}
	n := len(calls)
	d.mu.Lock()
	switch {
	case d.mu.Closed:
		d.mu.Unlock()
		return 0, wire.ECLOSED
	case d.mu.active >= d.cfg.MaxActive:
		d.mu.Unlock()
		d.stats.busy.Add(1)
		return 0, wire.EBUSY
	}
	d.mu.active++
	d.mu.Unlock()
	if !d.queue.reserve(n) {
		d.unactive()
		d.stats.busy.Add(1)
		return 0, wire.EBUSY
	}
	deadline := op.Deadline
	if deadline == 0 {
		deadline = d.cfg.DefaultDeadline
	}
	start := time.Now()
	o := &operation{
		id:       d.nextID.Add(1),
		resource: op.Resource,
		kind:     op.Kind,
		targets:  make([]netip.AddrPort, n),
		calls:    calls,
		start:    start,
		deadline: start.Add(deadline),
		done:     make(chan struct{}),
	}
	for i := range op.Targets {
		o.targets[i] = op.Targets[i].Addr
	}
	o.holder = holder{kind: op.Kind, instance: d.instance, op: o.id,
		expiryMs: o.deadline.Add(d.cfg.MarkerTTL).UnixMilli()}
	o.mu.state = StatePending
	o.mu.outcomes = make([]outcome, n)
	o.mu.remaining = n
	if e, maybe := d.markers.acquire(ctx, o.resource, o.holder); e != wire.OK {
		d.queue.unreserve(n)
		d.unactive()
		if maybe {
			// A CAS of ours may have been applied: take the holder
			// out rather than leave the resource locked to its expiry.
			rctx, cancel := context.WithTimeout(context.Background(), d.cfg.MarkerTimeout)
			d.release(rctx, o.resource, o.holder, o.id)
			cancel()
		}
		if e == wire.ECONFLICT {
			d.stats.conflicts.Add(1)
		} else {
			d.stats.markerErrors.Add(1)
		}
		return 0, e
	}
	o.ctx, o.cancel = context.WithDeadline(context.Background(), o.deadline)
	d.mu.Lock()
	if d.mu.Closed {
		d.mu.Unlock()
		o.cancel()
		d.queue.unreserve(n)
		d.unactive()
		rctx, cancel := context.WithTimeout(context.Background(), d.cfg.MarkerTimeout)
		d.release(rctx, o.resource, o.holder, o.id)
		cancel()
		return 0, wire.ECLOSED
	}
	d.mu.ops[o.id] = o
	// Pushed under d.mu: Close drains the queue after it sets closed, so
	// it sees this chunk.
	d.queue.push(chunk{op: o, from: 0, to: n})
	d.mu.Unlock()
	d.stats.submitted.Add(1)
	return o.id, nil
}

func (d *Dispatcher) unactive() {
	d.mu.Lock()
	d.mu.active--
	d.mu.Unlock()
}

// finish records the outcome of target i of op and hands op to the
// releaser when it was the last.
func (d *Dispatcher) finish(op *operation, i int, e wire.Errno, now time.Time) {
	if e == wire.OK {
		d.stats.targetsOK.Add(1)
	} else {
		d.stats.targetsFailed.Add(1)
	}
	if op.finish(i, e, now) {
		d.releaseQ <- op // never blocks: capacity MaxActive, each op once
	}
}

// retire moves a done operation from the active count to the retained
// list and prunes what the retention bounds no longer allow.
func (d *Dispatcher) retire(op *operation) {
	d.mu.Lock()
	d.mu.active--
	d.mu.retired = append(d.mu.retired, op)
	d.pruneLocked(time.Now())
	d.mu.Unlock()
	d.stats.opsDone.Add(1)
}

// pruneLocked forgets done operations past Retention or MaxRetained.
func (d *Dispatcher) pruneLocked(now time.Time) {
	k := 0
	for k < len(d.mu.retired) {
		op := d.mu.retired[k]
		op.mu.Lock()
		ended := op.mu.ended
		op.mu.Unlock()
		if len(d.mu.retired)-k <= d.cfg.MaxRetained && now.Sub(ended) < d.cfg.Retention {
			break
		}
		delete(d.mu.ops, op.id)
		k++
	}
	if k > 0 {
		n := copy(d.mu.retired, d.mu.retired[k:])
		clear(d.mu.retired[n:])
		d.mu.retired = d.mu.retired[:n]
	}
}

// lookup returns the operation id, or nil if unknown or forgotten.
func (d *Dispatcher) lookup(id uint64) *operation {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pruneLocked(time.Now())
	return d.mu.ops[id]
}

// Status returns a snapshot of operation id with every target's outcome;
// ENOENT if the id is unknown or its status is no longer retained.
func (d *Dispatcher) Status(id uint64) (Status, error) {
	op := d.lookup(id)
	if op == nil {
		return Status{}, wire.ENOENT
	}
	return op.status(0, -1), nil
}

// Wait parks until operation id is done (every target has an outcome and
// its marker is released) and returns its status. Errors: ENOENT (unknown
// id), ETIMEDOUT or ECANCELED (ctx ended first; the operation goes on).
func (d *Dispatcher) Wait(ctx context.Context, id uint64) (Status, error) {
	op := d.lookup(id)
	if op == nil {
		return Status{}, wire.ENOENT
	}
	select {
	case <-op.done:
		return op.status(0, -1), nil
	case <-ctx.Done():
		return op.status(0, -1), rfc.ContextErrno(ctx.Err())
	}
}

// Stats returns a snapshot of the counters.
func (d *Dispatcher) Stats() Stats {
	q, _ := d.queue.len()
	d.mu.Lock()
	active, retained := d.mu.active, len(d.mu.retired)
	d.mu.Unlock()
	s := &d.stats
	return Stats{
		Submitted: s.submitted.Load(), Conflicts: s.conflicts.Load(), Busy: s.busy.Load(),
		MarkerErrors: s.markerErrors.Load(), Sent: s.sent.Load(), SendBusy: s.sendBusy.Load(),
		TargetsOK: s.targetsOK.Load(), TargetsFailed: s.targetsFailed.Load(), OpsDone: s.opsDone.Load(),
		ReleaseFailed: s.releaseFailed.Load(), RemoteSubmits: s.remoteSubmits.Load(),
		RemoteRefused: s.remoteRefused.Load(),
		Queued:        q, Active: active, Retained: retained,
	}
}
