package rfc

import (
	"context"
	"math"
	"net/netip"
	"time"

	"fastcall/wire"
)

// Reply holds a call's reply for Call. Its buffer is allocated on first
// use and reused; keep one Reply per caller to allocate nothing per call.
type Reply struct {
	wire.Packet
	buf []byte
}

func (r *Reply) set(p *Pending) {
	n := p.mu.pkt.Len
	if cap(r.buf) < n {
		r.buf = make([]byte, p.ep.cfg.MaxDatagram)
	}
	copy(r.buf[:n], p.mu.rep[:n])
	r.Packet = p.mu.pkt
	r.Packet.Rebase(r.buf[:n])
}

// Call sends a request to dst and parks until its reply, its deadline (the
// context's, or Config.DefaultTimeout), the context's cancellation
// (noticed within a timer tick, cancel.go), or the peer's declared death.
// It returns nil or an error number (wire.Errno): the callee's, or
// ETIMEDOUT (the deadline passed, before the call started too), ENODEAD,
// ECANCELED (the context was cancelled before its deadline), EBUSY (no
// free slot), EMSGSIZE, ECLOSED. On success the reply is copied into reply (which may
// be nil). A destination given as an IPv4-mapped IPv6 address is the IPv4
// peer, in this and every other method that takes one (peerAddr).
func (ep *Endpoint) Call(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params, reply *Reply) error {
	p, err := ep.start(ctx, dst, callNo, params, false)
	if err != nil {
		return err
	}
	return ep.wait(ctx, p, reply)
}

// wait parks on p until it completes or ctx ends, copies the reply and
// releases p. A context that ends by its deadline counts as ETIMEDOUT.
//
// The call's timer enforces the context's deadline (start), and the timer
// goroutine watches a context that may end earlier (cancel.go), so the
// caller parks on the bell or on p's channel alone, whatever its context,
// and is woken once. Before Start there is no timer goroutine: the caller
// then watches the context itself.
func (ep *Endpoint) wait(ctx context.Context, p *Pending, reply *Reply) error {
	if !ep.started.Load() {
		return ep.waitUnstarted(ctx, p, reply)
	}
	watched := false
	if mayEndEarly(ctx) {
		var id uint64
		if id, watched = ep.watchCancel(ctx, p); watched {
			if err := ctx.Err(); err != nil {
				ep.endWaiting(p, id, err)
			}
		}
	}
	ep.bellWait(p)
	<-p.done
	if watched {
		ep.unwatch(p)
	}
	return ep.finishWait(p, reply)
}

// waitUnstarted is wait on an endpoint whose goroutines have not started.
func (ep *Endpoint) waitUnstarted(ctx context.Context, p *Pending, reply *Reply) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.mu.Lock()
		id := p.mu.callID
		p.mu.Unlock()
		ep.endWaiting(p, id, ctx.Err())
		<-p.done
	}
	return ep.finishWait(p, reply)
}

// finishWait copies the reply of the completed call p and releases p.
func (ep *Endpoint) finishWait(p *Pending, reply *Reply) error {
	err := p.Err()
	if err == nil && reply != nil {
		reply.set(p)
	}
	p.Release()
	return err
}

// Go sends a request and returns at once with the pending call; wait on
// Done or Wait, read Reply, then Release. The deadline is the context's
// (or Config.DefaultTimeout); cancellation of ctx after Go returns is not
// watched — Release abandons a call.
func (ep *Endpoint) Go(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params) (*Pending, error) {
	return ep.start(ctx, dst, callNo, params, false)
}

// GoFunc sends a request like Go and, instead of a Pending to wait on,
// runs done once when the call completes: with its reply, or with
// ETIMEDOUT after timeout, ENODEAD, or ECLOSED. done runs on the
// goroutine that completes the call (a reader, the timer goroutine, or
// the one calling MarkDead or Close), so it must be short and must never
// block; it reads p.Err and p.Reply, which are valid only until it
// returns, and must not call Release: the engine releases the call after
// done. done may run before GoFunc returns. When GoFunc returns an error
// the call was not made and done never runs.
//
// A handler that defers its reply (RegisterDeferred) forwards with
// GoFunc and replies from done, so that no goroutine waits for the
// forwarded call.
func (ep *Endpoint) GoFunc(dst netip.AddrPort, callNo uint16, params *wire.Params, timeout time.Duration, done func(p *Pending)) error {
	if done == nil {
		return wire.EINVAL
	}
	_, err := ep.startCall(dst, callNo, params, timeout, false, done)
	return err
}

// Probe is Call for liveness checks: it goes out even to a peer marked
// dead, so that the heartbeat service can hear it again.
func (ep *Endpoint) Probe(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params, reply *Reply) error {
	p, err := ep.start(ctx, dst, callNo, params, true)
	if err != nil {
		return err
	}
	return ep.wait(ctx, p, reply)
}

// Send sends a one-way request: no reply, no retransmission, no
// guarantee of delivery. It fails only locally (ENODEAD, EMSGSIZE,
// ECLOSED). A call not registered Idempotent is dropped by the callee
// until this endpoint has heard the callee's incarnation.
func (ep *Endpoint) Send(dst netip.AddrPort, callNo uint16, params *wire.Params) error {
	if ep.closed.Load() {
		return wire.ECLOSED
	}
	dst = peerAddr(dst)
	peer := ep.peers.get(dst)
	if PeerState(peer.state.Load()) == PeerDead {
		return wire.ENODEAD
	}
	s := ep.sendBuf.Get().(*sendScratch)
	defer ep.sendBuf.Put(s)
	h := wire.Header{Flags: wire.FlagRequest | wire.FlagOneWay, CallNo: callNo, Src: ep.id, Dst: peer.dst(),
		CallID: ep.seq.Add(1) << slotBits, Incarnation: ep.inc.Load(), PeerInc: peer.incarn.Load(), Stamp: ep.stamp()}
	n, e := ep.codecOf(&s.codec).EncodeParams(s.buf, &h, params)
	if e != wire.OK {
		return e
	}
	ep.stats.callOut(callNo).calls.Add(1)
	ep.writeTo(s.buf[:n], dst)
	return nil
}

// stamp returns the header's clock field.
func (ep *Endpoint) stamp() uint32 { return stampOf(time.Now()) }

// stampOf is the header's clock field at t: wall-clock milliseconds.
func stampOf(t time.Time) uint32 { return uint32(t.UnixMilli()) }

// clock returns the engine clock (Now) and the header's clock field
// (stamp) from one reading of the time.
func (ep *Endpoint) clock() (now int64, stamp uint32) {
	t := time.Now()
	return int64(t.Sub(ep.epoch)), stampOf(t)
}

func (ep *Endpoint) writeTo(b []byte, dst netip.AddrPort) {
	var err error
	if ep.tr != nil {
		err = ep.tr.Send(b, dst)
	} else {
		err = ep.sw.write(b, dst)
	}
	if err != nil {
		ep.stats.sendErrs.Add(1)
		return
	}
	ep.stats.tx.Add(1)
}

// replyTo sends the reply b to dst from local, the address its request
// was sent to on a wildcard socket (Request.local), which is the one its
// caller accepts it from; with local invalid it is writeTo.
func (ep *Endpoint) replyTo(b []byte, dst netip.AddrPort, local netip.Addr) {
	if ep.tr != nil || !local.IsValid() {
		ep.writeTo(b, dst)
		return
	}
	if err := ep.sw.writeFrom(b, dst, local); err != nil {
		ep.stats.sendErrs.Add(1)
		return
	}
	ep.stats.tx.Add(1)
}

// start takes a slot, encodes and sends the request, and arms its timer.
// The deadline is the context's, or Config.DefaultTimeout. A context that
// has ended already fails the call unsent as it would have failed in
// flight (ContextErrno): ETIMEDOUT past its deadline, ECANCELED if
// cancelled before it.
func (ep *Endpoint) start(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params, probe bool) (*Pending, error) {
	if err := ctx.Err(); err != nil && !ep.closed.Load() {
		return nil, ContextErrno(err)
	}
	timeout := ep.cfg.DefaultTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return ep.startCall(dst, callNo, params, timeout, probe, nil)
}

// startCall is start with the time the call may take, and the completion
// function of a GoFunc call (nil otherwise).
func (ep *Endpoint) startCall(dst netip.AddrPort, callNo uint16, params *wire.Params, timeout time.Duration, probe bool, fn func(*Pending)) (*Pending, error) {
	if ep.closed.Load() {
		return nil, wire.ECLOSED
	}
	dst = peerAddr(dst)
	now, stamp := ep.clock()
	peer := ep.peers.getAt(dst, now)
	if !probe && PeerState(peer.state.Load()) == PeerDead {
		ep.stats.callOut(callNo).errs.add(wire.ENODEAD)
		return nil, wire.ENODEAD
	}
	if timeout <= 0 {
		return nil, wire.ETIMEDOUT
	}
	deadline := clockAfter(now, timeout)
	p := ep.pending.get()
	if p == nil {
		ep.stats.busy.Add(1)
		return nil, wire.EBUSY
	}
	p.mu.Lock()
	if p.mu.req == nil {
		p.mu.req = make([]byte, ep.cfg.MaxDatagram)
		p.mu.rep = make([]byte, ep.cfg.MaxDatagram)
	}
	id := ep.seq.Add(1)<<slotBits | uint64(p.idx)
	h := wire.Header{Flags: wire.FlagRequest, CallNo: callNo, Src: ep.id, Dst: peer.dst(), CallID: id,
		Incarnation: ep.inc.Load(), PeerInc: peer.incarn.Load(), Budget: budgetUs(deadline - now), Stamp: stamp}
	n, e := ep.codecOf(&p.mu.codec).EncodeParams(p.mu.req, &h, params)
	if e == wire.OK && ep.closed.Load() {
		// Close sets closed before it sweeps the slots under their
		// locks: either its sweep of this slot comes after this
		// unlock and finds the call waiting, or closed shows here.
		e = wire.ECLOSED
	}
	if e == wire.OK && !probe && PeerState(peer.state.Load()) == PeerDead {
		// The same for MarkDead, which marks the peer before it
		// sweeps: a call that found the peer alive above fails now,
		// rather than park on a dead peer until its deadline.
		e = wire.ENODEAD
		ep.stats.callOut(callNo).errs.add(e)
	}
	if e != wire.OK {
		p.mu.Unlock()
		ep.pending.put(p.idx)
		return nil, e
	}
	p.mu.state = slotWaiting
	p.fin.Store(false)
	p.live.Store(id)
	p.mu.bell = false
	p.mu.callID = id
	p.mu.callNo = callNo
	p.mu.peer = peer
	p.mu.dst = dst
	p.mu.sentAt = now
	p.mu.deadline = deadline
	p.mu.rto = peer.rto()
	p.mu.retrans = 0
	p.mu.reqLen = n
	p.mu.err = wire.OK
	p.mu.fn = fn
	at := now + p.mu.rto
	if at > deadline {
		at = deadline
	}
	// A caller that waits for its call (Call, Go) sends after unlocking
	// it: the reply may come back while the send is still in the kernel,
	// and the reader delivering it must not wait for the lock meanwhile.
	// Nothing else writes the request before the timer is pushed below,
	// and the slot is released only by this goroutine or after it. A
	// GoFunc call's slot is released by whoever completes it, perhaps
	// during the send, so its request goes out under the lock.
	var after []byte
	if fn == nil {
		after = p.mu.req[:n]
	} else {
		ep.writeTo(p.mu.req[:n], dst)
	}
	p.mu.Unlock()
	if after != nil {
		ep.writeTo(after, dst)
	}
	ep.stats.callOut(callNo).calls.Add(1)
	ep.timers.push(timerEntry{at: at, id: id, idx: p.idx})
	return p, nil
}

// sendBudgetLocked restamps the request of p with its remaining budget and
// sends it again.
func (ep *Endpoint) sendBudgetLocked(p *Pending, now int64) {
	b := p.mu.req[:p.mu.reqLen]
	ep.codecOf(&p.mu.codec).Restamp(b, budgetUs(p.mu.deadline-now), ep.stamp(), true)
	ep.writeTo(b, p.mu.dst)
}

// clockAfter returns the engine clock time d after now, saturated at the
// largest clock value: a timeout too long to represent is no deadline in
// practice, never a deadline in the past.
func clockAfter(now int64, d time.Duration) int64 {
	if int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

// maxBudget is the longest time, in engine-clock nanoseconds, the budget
// field carries (2^32-1 µs): budgetUs saturates there, and a caller sends
// no copy of a call later than this after its first send (expire).
const maxBudget = int64(1<<32-1) * 1000

func budgetUs(ns int64) uint32 {
	us := ns / 1000
	if us < 1 {
		return 1
	}
	if us > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(us)
}

// CeilMs returns d in whole milliseconds, rounded up (toward +∞): the
// one form of a duration that a call carries as a millisecond parameter
// (a dispatch deadline, a registry ttl or lease). Their receivers read 0
// as "none" or "the default", so a positive d below a millisecond must
// travel as 1, never as 0: rounded down, a short deadline would run for
// the default and a short ttl would never expire.
func CeilMs(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}
