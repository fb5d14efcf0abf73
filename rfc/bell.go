package rfc

import (
	"os"
	"sync/atomic"
	"syscall"
)

// bell is the endpoint's doorbell: how the only call in flight is woken
// without waking a goroutine directly.
//
// A caller parked on a channel is made runnable by whoever completes its
// call (a reader, usually). The Go scheduler then wakes an idle thread to
// look for work, and that thread takes over polling the network: from
// then on every datagram that arrives wakes a thread on the other
// processor. On a quiet endpoint that chain adds about a third to a
// loopback round trip (bench/RESULTS.md: "raw UDP + hand-off" against "raw
// UDP echo"). A caller parked in the network poller instead, as a
// goroutine reading its own socket is, is made runnable by the poller on
// the thread that is already running, and nothing else wakes.
//
// So a caller that is the endpoint's only call in flight may park in the
// poller on an eventfd, and the goroutine that completes its call writes
// the eventfd; which of the two ways is cheaper depends on what else the
// process is running, and sole callers measure both (choose). One caller
// at a time holds the bell; others, and callers whose context can be
// cancelled, park on their call's channel.
// The completer signals the channel too, so that a caller that leaves the
// bell early (the file closed under it) finds its call complete there.
type bell struct {
	f      *os.File
	raw    syscall.RawConn
	busy   atomic.Bool // a caller holds the bell
	p      *Pending    // the call of the caller holding it
	waitF  func(fd uintptr) bool
	ringF  func(fd uintptr) bool
	closed atomic.Bool
	waits  atomic.Uint64   // calls waited for on the bell
	sole   atomic.Uint64   // sole calls that chose how to wait
	avg    [2]atomic.Int64 // moving average round trip, ns: [0] channel, [1] bell
}

// init opens the eventfd; where there is none, the bell stays off.
func (b *bell) init() {
	f, err := newBellFile()
	if err != nil {
		return
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	b.f, b.raw = f, raw
	b.waitF = b.poll
	b.ringF = bellRing
}

// poll is the RawRead function of the caller holding the bell: done when
// its call is complete, else park until the next ring. The eventfd is
// never read: every write to it is an event for the poller (which waits
// edge-triggered) whatever its counter holds, and RawRead forgets a
// readiness left over from an earlier ring before it calls poll. The
// counter would take 2^64 rings to fill.
func (b *bell) poll(fd uintptr) bool {
	return b.p.fin.Load()
}

// sole reports whether the caller of p may choose how to wait: the bell
// exists and p is the only call in flight.
func (ep *Endpoint) sole() bool {
	return ep.bell.raw != nil && ep.pending.used.Load() == 1
}

// choose picks how the only call in flight waits: on the bell (true) or
// on its channel. Neither always wins. The bell spares the wake-up of a
// second thread, which is what a channel costs when the other processors
// are idle; when they are busy that wake-up is not made, and the bell's
// eventfd write and poller pass cost more than the channel (a routed call
// with three endpoints in one process measured about 3µs more per call on
// the bell). So sole calls measure both: their round trips, from the
// request's first send to the caller's wake-up, feed one moving average
// per way, one sole call in sixteen takes the way not in favour, and the
// others take the way whose average is lower.
func (b *bell) choose() bool {
	n := b.sole.Add(1)
	onBell := b.avg[1].Load() <= b.avg[0].Load()
	// One call in 1<<bellExploreBits, picked by the top bits of n times
	// the golden ratio rather than by n's low bits, so that a caller
	// whose calls alternate between kinds (say, a near and a far peer)
	// does not always explore with the same kind.
	if (n*0x9E3779B97F4A7C15)>>(64-bellExploreBits) == 0 {
		onBell = !onBell
	}
	return onBell
}

// One sole call in 1<<bellExploreBits takes the way not in favour.
const bellExploreBits = 4

// record folds the round trip rtt of a sole call that waited on the bell
// (onBell) or on its channel into that way's average (gain 1/32: the
// difference to find is a few microseconds in round trips that may mix
// peers near and far). A first sample sets it.
func (b *bell) record(onBell bool, rtt int64) {
	i := 0
	if onBell {
		i = 1
	}
	a := b.avg[i].Load()
	if a == 0 {
		b.avg[i].Store(rtt)
		return
	}
	b.avg[i].Store(a + (rtt-a)/32)
}

// bellWait parks the caller of p on the bell until p completes, unless
// another caller holds the bell or p is complete already; then it returns
// at once. Either way the caller then waits on p's channel, which holds a
// value once p is complete.
func (ep *Endpoint) bellWait(p *Pending) {
	b := &ep.bell
	if !b.busy.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	if p.mu.state != slotWaiting {
		p.mu.Unlock()
		b.busy.Store(false)
		return
	}
	p.mu.bell = true
	p.mu.Unlock()
	b.waits.Add(1)
	b.p = p
	b.raw.Read(b.waitF)
	b.p = nil
	b.busy.Store(false)
}

// ring wakes the caller holding the bell. Called with the call's lock
// held, from completeLocked.
func (b *bell) ring() {
	b.raw.Write(b.ringF)
}

// close closes the eventfd; a caller parked on it returns and finds its
// call on the channel.
func (b *bell) close() {
	if b.f != nil && b.closed.CompareAndSwap(false, true) {
		b.f.Close()
	}
}
