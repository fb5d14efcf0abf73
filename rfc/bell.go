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
// processor, and a quiet endpoint pays that chain on every round trip
// (bench/RESULTS.md, calls: "raw UDP + hand-off" against "raw UDP echo"
// measures it). A caller parked in the network poller instead, as a
// goroutine reading its own socket is, is made runnable by the poller on
// the thread that is already running, and nothing else wakes.
//
// So a caller that is the endpoint's only call in flight parks in the
// poller on an eventfd, and the goroutine that completes its call writes
// the eventfd. One caller at a time holds the bell; others park on their
// call's channel. The caller's context does not matter: its deadline is
// the call's timer and its cancellation is watched by the timer goroutine
// (cancel.go), which completes the call like any other completer. The
// completer signals the channel too, so that a caller that leaves the
// bell early (the file closed under it) finds its call complete there.
type bell struct {
	f      *os.File
	raw    syscall.RawConn
	busy   atomic.Bool           // a caller holds the bell
	p      *Pending              // the call of the caller holding it
	waitF  func(fd uintptr) bool // b.poll, made once
	closed atomic.Bool
	waits  atomic.Uint64 // calls waited for on the bell
	// on is set once init has set the fields above, which are read only
	// after on is seen set: a service may call while Start runs.
	on atomic.Bool
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
	b.on.Store(true)
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

// bellWait parks the caller of p on the bell until p completes, if p is the
// only call in flight and no other caller holds the bell; otherwise it
// returns at once. Either way the caller then waits on p's channel, which
// holds a value once p is complete.
func (ep *Endpoint) bellWait(p *Pending) {
	b := &ep.bell
	if !b.on.Load() || ep.pending.used.Load() != 1 || !b.busy.CompareAndSwap(false, true) {
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
	b.raw.Write(bellRing)
}

// close closes the eventfd; a caller parked on it returns and finds its
// call on the channel.
func (b *bell) close() {
	if b.on.Load() && b.closed.CompareAndSwap(false, true) {
		b.f.Close()
	}
}
