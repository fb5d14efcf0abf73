package rfc

import (
	"context"
	"errors"
	"math/bits"
	"sync/atomic"

	"fastcall/wire"
)

// cancelWatch is how the engine notices that the context of a parked
// caller ended early, with no goroutine, no wake-up and no allocation per
// call.
//
// A context's deadline needs no watching: start reads it, and the call's
// own timer fails the call with ETIMEDOUT when it passes. What is left is
// cancellation before the deadline (cancel(), or a parent's). A caller
// whose context can end early records the context in its slot and sets
// the slot's bit here; the timer goroutine, while any bit is set, wakes at
// least once per poll interval (Endpoint.pollEvery: MinRTO on a socket
// endpoint, whose wake-ups are kernel timers; a tick on a Transport) and
// asks each watched context for Err, completing the calls whose context
// ended. So such a caller parks exactly as a caller with
// context.Background does (on the bell when its call is the only one in
// flight, otherwise on its call's channel) and is woken once, by whoever
// completes its call; a cancelled call returns within about a poll
// interval of the cancellation.
//
// The Done channel of a context with a deadline is never asked for: a
// context made for one call, as the services make them, would allocate
// its channel on the first Done.
//
// The timer goroutine keeps polling for watchLinger intervals after the last
// watched call ended, so that a caller making one call after another does
// not have to wake it for each call; a caller that finds it not polling
// wakes it.
type cancelWatch struct {
	bits    []atomic.Uint64 // bit i set: slot i's caller waits with a context to watch
	n       atomic.Int32    // bits set
	polling atomic.Bool     // the timer goroutine scans at least once per poll interval
	idle    int             // scans in a row that found no bit set; timer goroutine only
}

// watchLinger is how many intervals the timer goroutine goes on polling with
// no watched call before it stops.
const watchLinger = 64

func (w *cancelWatch) init(slots int) {
	w.bits = make([]atomic.Uint64, (slots+63)/64)
}

// mayEndEarly reports whether ctx can end before a deadline the call
// already enforces, without asking a context that has a deadline for its
// Done channel.
func mayEndEarly(ctx context.Context) bool {
	if _, ok := ctx.Deadline(); ok {
		return true
	}
	return ctx.Done() != nil
}

// watchCancel puts p's context under watch and returns p's call id; it
// reports false, and does nothing, when p is already complete. The caller
// of p calls unwatch once p is complete.
func (ep *Endpoint) watchCancel(ctx context.Context, p *Pending) (uint64, bool) {
	p.mu.Lock()
	if p.mu.state != slotWaiting {
		p.mu.Unlock()
		return 0, false
	}
	p.mu.ctx = ctx
	id := p.mu.callID
	p.mu.Unlock()
	w := &ep.watch
	w.bits[p.idx>>6].Or(1 << (p.idx & 63))
	w.n.Add(1)
	// The timer goroutine clears polling before it looks at n a last
	// time, and this caller raised n before it looks at polling: one of
	// the two sees the other.
	if !w.polling.Load() {
		ep.timers.kick()
	}
	return id, true
}

// unwatch takes p off the watch. Release forgets its context.
func (ep *Endpoint) unwatch(p *Pending) {
	w := &ep.watch
	w.bits[p.idx>>6].And(^(uint64(1) << (p.idx & 63)))
	w.n.Add(-1)
}

// scanCancels is run by the timer goroutine on each of its wake-ups: it
// completes every watched call whose context ended, and says whether the
// goroutine must wake again within a poll interval.
func (ep *Endpoint) scanCancels() bool {
	w := &ep.watch
	if w.n.Load() == 0 {
		if !w.polling.Load() {
			return false
		}
		if w.idle++; w.idle < watchLinger {
			return true
		}
		w.polling.Store(false)
		if w.n.Load() == 0 {
			return false
		}
	}
	w.idle = 0
	w.polling.Store(true)
	for i := range w.bits {
		b := w.bits[i].Load()
		for b != 0 {
			j := bits.TrailingZeros64(b)
			b &= b - 1
			ep.checkCancel(&ep.pending.slots[i<<6+j])
		}
	}
	return true
}

// checkCancel completes p if its caller's context ended. The context's
// Err runs outside p's lock.
func (ep *Endpoint) checkCancel(p *Pending) {
	p.mu.Lock()
	ctx, id := p.mu.ctx, p.mu.callID
	if ctx == nil || p.mu.state != slotWaiting {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		ep.endWaiting(p, id, err)
	}
}

// ContextErrno is the error number of a wait whose context ended with err
// (its Err): ETIMEDOUT when by its deadline, ECANCELED otherwise. A call
// (whether its context ended before it was sent or while it was in
// flight) and every wait of the services above report the end of a
// context so. ECANCELED thus means the caller gave up before its deadline.
func ContextErrno(err error) wire.Errno {
	if errors.Is(err, context.DeadlineExceeded) {
		return wire.ETIMEDOUT
	}
	return wire.ECANCELED
}

// endWaiting completes p, if it is still waiting for call id, because its
// caller's context ended with err: ContextErrno, ETIMEDOUT meaning the
// peer missed a call.
func (ep *Endpoint) endWaiting(p *Pending, id uint64, err error) {
	e := ContextErrno(err)
	p.mu.Lock()
	if p.mu.state != slotWaiting || p.mu.callID != id {
		p.mu.Unlock()
		return
	}
	peer, callNo := p.mu.peer, p.mu.callNo
	p.completeLocked(e)
	p.mu.Unlock()
	ep.stats.callOut(callNo).errs.add(e)
	if e == wire.ETIMEDOUT {
		ep.peerMissed(peer)
	}
}
