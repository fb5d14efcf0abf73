package rfc

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"

	"fastcall/wire"
)

const (
	slotBits = 20
	maxSlots = 1 << slotBits
	slotMask = maxSlots - 1
)

// Slot states.
const (
	slotFree    = 0
	slotWaiting = 1 // sent, parked until reply, deadline or failure
	slotDone    = 2 // completed; result readable until Release
)

// Pending is one call in flight, returned by Endpoint.Go. It lives in a
// slot of the endpoint's pending table and is reused after Release; do not
// touch it after Release.
//
// The call id of a call is seq<<20 | slot, where seq is an endpoint-wide
// counter: it names the slot, acts as the slot's generation (a late reply
// to an earlier call in the same slot carries another id and is dropped),
// and grows monotonically, which the callee's duplicate cache relies on.
type Pending struct {
	ep   *Endpoint
	idx  int32
	done chan struct{} // one value per completed call; reused
	fin  atomic.Bool   // completed: what a caller on the bell looks at
	live atomic.Uint64 // the call id while waiting, else 0: what the timer goroutine looks at

	mu struct {
		sync.Mutex
		state    uint8
		callID   uint64
		callNo   uint16
		peer     *peerState
		dst      netip.AddrPort
		sentAt   int64 // first transmission, engine clock
		deadline int64
		rto      int64
		retrans  int
		req      []byte // the encoded request, for retransmission
		reqLen   int
		rep      []byte // the reply datagram
		pkt      wire.Packet
		err      wire.Errno
		codec    codecRef
		fn       func(*Pending)  // GoFunc's completion function, nil for Go
		bell     bool            // the caller waits on the endpoint's bell
		learnt   bool            // resent with the callee's incarnation after an ESTALE (deliver)
		ctx      context.Context // the caller's context, while under watch (cancel.go)
	}
}

// Done returns a channel that receives one value when the call completes.
// Receiving consumes the value: after it, use Err and Reply, not Done.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait parks until the call completes and returns nil or its error number.
func (p *Pending) Wait() error {
	p.mu.Lock()
	st := p.mu.state
	p.mu.Unlock()
	if st == slotWaiting {
		<-p.done
		// Put the value back so Done stays usable for a later receive.
		p.done <- struct{}{}
	}
	return p.Err()
}

// Err returns nil, the call's error number, or EAGAIN while in flight.
func (p *Pending) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.state == slotWaiting:
		return wire.EAGAIN
	case p.mu.err != wire.OK:
		return p.mu.err
	}
	return nil
}

// Reply returns the decoded reply. It is valid after completion without
// error and until Release.
func (p *Pending) Reply() *wire.Packet { return &p.mu.pkt }

// Release gives the slot back. A call still in flight is abandoned (its
// late reply is dropped). Release must be called exactly once.
func (p *Pending) Release() {
	p.mu.Lock()
	if p.mu.state == slotWaiting {
		p.mu.err = wire.ECANCELED
	}
	p.mu.state = slotFree
	p.live.Store(0)
	p.mu.callID = 0
	p.mu.peer = nil
	p.mu.fn = nil
	p.mu.learnt = false
	p.mu.ctx = nil
	p.mu.Unlock()
	select {
	case <-p.done:
	default:
	}
	p.ep.pending.put(p.idx)
}

// completeLocked finishes a waiting call with err and wakes its waiter.
// A call made with GoFunc has no waiter: completeLocked returns its
// completion function, which the caller runs through p.finish once it
// has unlocked p.
func (p *Pending) completeLocked(err wire.Errno) func(*Pending) {
	p.mu.state = slotDone
	p.mu.err = err
	p.fin.Store(true)
	p.live.Store(0)
	if fn := p.mu.fn; fn != nil {
		return fn
	}
	select {
	case p.done <- struct{}{}:
	default:
	}
	if p.mu.bell {
		p.mu.bell = false
		p.ep.bell.ring()
	}
	return nil
}

// finish runs the completion function fn of a GoFunc call, if any, and
// then releases the call.
func (p *Pending) finish(fn func(*Pending)) {
	if fn == nil {
		return
	}
	fn(p)
	p.Release()
}

// pendingTable is the fixed array of call slots and their free list. The
// free list is a stack, so the most recently used slots (warm buffers,
// warm caches) are taken first.
type pendingTable struct {
	slots []Pending
	mu    sync.Mutex // guards free
	free  []int32
	used  atomic.Int32 // slots taken: changed under mu, read without it
}

func (t *pendingTable) init(ep *Endpoint, n int) {
	t.slots = make([]Pending, n)
	t.free = make([]int32, n)
	for i := range t.slots {
		p := &t.slots[i]
		p.ep = ep
		p.idx = int32(i)
		p.done = make(chan struct{}, 1)
		t.free[i] = int32(n - 1 - i)
	}
}

// get takes a free slot, or returns nil when all are in use.
func (t *pendingTable) get() *Pending {
	t.mu.Lock()
	n := len(t.free)
	if n == 0 {
		t.mu.Unlock()
		return nil
	}
	i := t.free[n-1]
	t.free = t.free[:n-1]
	t.used.Add(1)
	t.mu.Unlock()
	return &t.slots[i]
}

func (t *pendingTable) put(i int32) {
	t.mu.Lock()
	t.free = append(t.free, i)
	t.used.Add(-1)
	t.mu.Unlock()
}

// inUse returns the number of slots taken.
func (t *pendingTable) inUse() int { return int(t.used.Load()) }

// byID returns the slot a call id names.
func (t *pendingTable) byID(id uint64) *Pending {
	i := id & slotMask
	if i >= uint64(len(t.slots)) {
		return nil
	}
	return &t.slots[i]
}
