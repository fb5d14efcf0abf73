// Package simnet is an in-memory datagram network for the deterministic
// simulation (docs/SIMULATION.md): many rfc endpoints, each opened with
// rfc.OpenTransport on a Conn of one Network, exchange datagrams through
// it under a seeded fault model per link and direction: loss,
// duplication, reordering, delay distributions, corruption, symmetric and
// one-way partitions, a paused node, and a crash and restart with a new
// incarnation.
//
// Every goroutine of the network blocks only on channels, timers and sync
// primitives, so that under testing/synctest time is virtual: a datagram
// delayed by a second arrives when every goroutine of the bubble is
// blocked and the bubble's clock has moved a second on.
//
// Determinism: the fate of a datagram (lost, duplicated, delayed by how
// much, corrupted where) is drawn from a generator seeded with the
// network's seed, the link, the virtual time of the send and the
// datagram's bytes, not from one generator consumed in the order
// goroutines happen to send. Two datagrams due at the same instant are
// delivered in the order of that same hash. The Trace records every
// event; its Hash does not depend on the order of events within one
// instant.
//
// It is test infrastructure; production code never imports it.
package simnet

import (
	"container/heap"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"fastcall/wire"
)

// InboxLen bounds the datagrams waiting for a reader at one address, like
// a socket's receive buffer: a datagram that finds it full is dropped
// (counted as "overflow" in the trace).
const InboxLen = 512

// link names one direction of one link.
type link struct{ src, dst netip.AddrPort }

// host is one address of the network and its state.
type host struct {
	addr    netip.AddrPort
	conn    *Conn     // the attached endpoint's Conn; nil while crashed
	paused  bool      // like SIGSTOP: nothing in, nothing out
	heldIn  []flight  // delivered while paused, up to InboxLen
	heldOut []pending // sent while paused
	incs    uint32    // incarnations handed out at this address
}

// pending is a send held while its sender is paused.
type pending struct {
	b   []byte
	dst netip.AddrPort
}

// flight is a datagram in the network.
type flight struct {
	at  time.Time
	key uint64 // tie-break among datagrams due at once
	src netip.AddrPort
	dst netip.AddrPort
	b   []byte
}

type flightHeap []flight

func (h flightHeap) Len() int { return len(h) }
func (h flightHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].key < h[j].key
}
func (h flightHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *flightHeap) Push(x any)   { *h = append(*h, x.(flight)) }
func (h *flightHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Network is the simulated network. Create it inside the synctest bubble
// that runs the endpoints, and Close it before the bubble ends.
type Network struct {
	seed  uint64
	trace *Trace

	mu struct {
		sync.Mutex
		hosts  map[netip.AddrPort]*host
		def    Faults          // every link without its own
		links  map[link]Faults // per link and direction
		cut    map[link]bool   // partitioned directions
		flying flightHeap
		closed bool
	}
	wake chan struct{} // cap 1: the earliest flight changed
	stop chan struct{}
	done chan struct{}
}

// New returns a network with the default fault model def on every link,
// and starts its delivery goroutine.
func New(seed uint64, def Faults, tr *Trace) *Network {
	if tr == nil {
		tr = NewTrace(0)
	}
	n := &Network{seed: seed, trace: tr, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	n.mu.hosts = map[netip.AddrPort]*host{}
	n.mu.def = def
	n.mu.links = map[link]Faults{}
	n.mu.cut = map[link]bool{}
	go n.deliverLoop()
	return n
}

// Trace returns the network's trace.
func (n *Network) Trace() *Trace { return n.trace }

// Close stops the delivery goroutine and drops what is in flight.
func (n *Network) Close() {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return
	}
	n.mu.closed = true
	n.mu.flying = nil
	n.mu.Unlock()
	close(n.stop)
	<-n.done
}

// SetFaults sets the fault model of the direction src to dst.
func (n *Network) SetFaults(src, dst netip.AddrPort, f Faults) {
	n.mu.Lock()
	n.mu.links[link{src, dst}] = f
	n.mu.Unlock()
	n.trace.Add("faults", src, dst, "")
}

// SetDefault sets the fault model of every link without its own, and
// forgets every per-link model.
func (n *Network) SetDefault(f Faults) {
	n.mu.Lock()
	n.mu.def = f
	n.mu.links = map[link]Faults{}
	n.mu.Unlock()
	n.trace.Add("faults-default", netip.AddrPort{}, netip.AddrPort{}, "")
}

// Cut partitions the direction src to dst (a one-way partition); cut
// both directions for a symmetric one. Datagrams already in flight still
// arrive.
func (n *Network) Cut(src, dst netip.AddrPort) {
	n.mu.Lock()
	n.mu.cut[link{src, dst}] = true
	n.mu.Unlock()
	n.trace.Add("cut", src, dst, "")
}

// Heal ends the partition of the direction src to dst.
func (n *Network) Heal(src, dst netip.AddrPort) {
	n.mu.Lock()
	delete(n.mu.cut, link{src, dst})
	n.mu.Unlock()
	n.trace.Add("heal", src, dst, "")
}

// HealAll ends every partition.
func (n *Network) HealAll() {
	n.mu.Lock()
	n.mu.cut = map[link]bool{}
	n.mu.Unlock()
	n.trace.Add("heal-all", netip.AddrPort{}, netip.AddrPort{}, "")
}

// Pause stops the node at addr as SIGSTOP stops a process, as far as the
// network sees it: datagrams to it wait (up to InboxLen, the rest are
// dropped) and datagrams it sends are held, until Resume. Its goroutines
// still run (docs/SIMULATION.md says what that leaves out).
func (n *Network) Pause(addr netip.AddrPort) {
	n.mu.Lock()
	if h := n.mu.hosts[addr]; h != nil {
		h.paused = true
	}
	n.mu.Unlock()
	n.trace.Add("pause", addr, netip.AddrPort{}, "")
}

// ResumeGap spaces what a resumed node does with what it held: it reads
// its held datagrams one every ResumeGap, and its held sends go out one
// every ResumeGap, in order, as a process reads its socket buffer one
// datagram at a time. No two of them happen at one instant, so what each
// one causes is done before the next (virtual time moves only when every
// goroutine is blocked) and the order does not depend on the scheduler.
const ResumeGap = time.Microsecond

// Resume ends a Pause: the held datagrams are read and the held sends go
// out, in the order they were made, one every ResumeGap.
func (n *Network) Resume(addr netip.AddrPort) {
	n.trace.Add("resume", addr, netip.AddrPort{}, "")
	n.mu.Lock()
	h := n.mu.hosts[addr]
	if h == nil || !h.paused {
		n.mu.Unlock()
		return
	}
	h.paused = false
	in, out := h.heldIn, h.heldOut
	h.heldIn, h.heldOut = nil, nil
	now := time.Now()
	for i, f := range in {
		f.at = now.Add(time.Duration(i+1) * ResumeGap)
		heap.Push(&n.mu.flying, f)
	}
	for i, p := range out {
		n.sendLocked(now.Add(time.Duration(i+1)*ResumeGap), addr, p.dst, p.b)
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Attach returns the Conn of a new endpoint at addr (a first start or a
// restart after a crash) with the next incarnation of that address: a
// process that starts again draws a new one. The previous Conn must be
// closed (its endpoint crashed or stopped).
func (n *Network) Attach(addr netip.AddrPort) *Conn {
	n.mu.Lock()
	h := n.mu.hosts[addr]
	if h == nil {
		h = &host{addr: addr}
		n.mu.hosts[addr] = h
	}
	h.incs++
	// Incarnations are drawn, as a real process draws them, but from
	// the seed: a later one may be smaller than an earlier one.
	inc := uint32(mix(n.seed, hashAddr(addr), uint64(h.incs)))
	if inc == 0 {
		inc = 1
	}
	c := &Conn{n: n, addr: addr, inc: inc, inbox: make(chan datagram, InboxLen), closed: make(chan struct{})}
	h.conn = c
	h.paused = false
	h.heldIn, h.heldOut = nil, nil
	n.mu.Unlock()
	n.trace.Add("attach", addr, netip.AddrPort{}, "")
	return c
}

// Crash detaches the endpoint at addr: datagrams to the address are
// dropped from now on, until Attach. The caller closes the endpoint.
func (n *Network) Crash(addr netip.AddrPort) {
	n.mu.Lock()
	if h := n.mu.hosts[addr]; h != nil {
		h.conn = nil
		h.paused = false
		h.heldIn, h.heldOut = nil, nil
	}
	n.mu.Unlock()
	n.trace.Add("crash", addr, netip.AddrPort{}, "")
}

// send puts one datagram from src to dst into the network.
func (n *Network) send(src, dst netip.AddrPort, b []byte) {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return
	}
	if h := n.mu.hosts[src]; h != nil && h.paused {
		h.heldOut = append(h.heldOut, pending{append([]byte(nil), b...), dst})
		n.mu.Unlock()
		n.trace.AddPacket("held-out", src, dst, b)
		return
	}
	n.sendLocked(time.Now(), src, dst, b)
	n.mu.Unlock()
}

// sendLocked draws the datagram's fate and puts what survives in flight.
func (n *Network) sendLocked(now time.Time, src, dst netip.AddrPort, b []byte) {
	l := link{src, dst}
	f, ok := n.mu.links[l]
	if !ok {
		f = n.mu.def
	}
	r := Rand{rng{mix(n.seed, hashAddr(src)^hashAddr(dst)<<1, uint64(now.UnixNano()), fateKey(b))}}
	if n.mu.cut[l] {
		n.trace.AddPacket("cut", src, dst, b)
		return
	}
	fa := f.Decide(&r, len(b))
	if fa.Lost {
		n.trace.AddPacket("loss", src, dst, b)
		return
	}
	for i := 0; i < fa.N; i++ {
		cp := &fa.Copies[i]
		c := cp.Bytes(b)
		kind := "send"
		if i > 0 {
			kind = "dup"
		}
		if cp.Corrupt {
			kind += "+corrupt"
		}
		if cp.Reordered {
			kind += "+reorder"
		}
		heap.Push(&n.mu.flying, flight{at: now.Add(cp.Delay), key: cp.Key, src: src, dst: dst, b: c})
		n.trace.AddPacket(kind, src, dst, c)
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// fateKey hashes what a datagram's fate is drawn from: its bytes, but
// for the call id and the checksum or tag (which covers the call id). A
// call id counts an endpoint's calls in the order its goroutines made
// them, and goroutines woken at one instant may run in either order; the
// rest of a datagram is the same from run to run.
func fateKey(b []byte) uint64 {
	if len(b) < wire.HeaderSize {
		return xxhash.Sum64(b)
	}
	d := xxhash.New()
	d.Write(b[:wire.OffCallID])
	d.Write(b[wire.OffCallID+wire.SizeCallID : wire.OffTag])
	d.Write(b[wire.HeaderSize:])
	return d.Sum64()
}

// deliverLoop is the network's goroutine: it hands each datagram to its
// destination when it is due.
func (n *Network) deliverLoop() {
	defer close(n.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		n.mu.Lock()
		now := time.Now()
		for len(n.mu.flying) > 0 && !n.mu.flying[0].at.After(now) {
			f := heap.Pop(&n.mu.flying).(flight)
			n.deliverLocked(f)
		}
		wait := time.Hour
		if len(n.mu.flying) > 0 {
			wait = n.mu.flying[0].at.Sub(now)
		}
		n.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-n.wake:
		case <-n.stop:
			return
		}
	}
}

// deliverLocked hands f to its destination's reader, or holds it for a
// paused one, or drops it.
func (n *Network) deliverLocked(f flight) {
	h := n.mu.hosts[f.dst]
	switch {
	case h == nil || h.conn == nil:
		n.trace.AddPacket("no-host", f.src, f.dst, f.b)
	case h.paused:
		if len(h.heldIn) >= InboxLen {
			n.trace.AddPacket("overflow", f.src, f.dst, f.b)
			return
		}
		h.heldIn = append(h.heldIn, f)
	default:
		select {
		case h.conn.inbox <- datagram{f.b, f.src}:
			n.trace.AddPacket("recv", f.src, f.dst, f.b)
		default:
			n.trace.AddPacket("overflow", f.src, f.dst, f.b)
		}
	}
}

// datagram is one datagram waiting for a reader.
type datagram struct {
	b   []byte
	src netip.AddrPort
}

// Conn is one endpoint's attachment to the network; it implements
// rfc.Transport.
type Conn struct {
	n      *Network
	addr   netip.AddrPort
	inc    uint32
	inbox  chan datagram
	once   sync.Once
	closed chan struct{}
}

// Recv blocks for the next datagram to this Conn.
func (c *Conn) Recv(b []byte) (int, netip.AddrPort, error) {
	select {
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	default:
	}
	select {
	case d := <-c.inbox:
		return copy(b, d.b), d.src, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// Send puts b into the network; it never blocks on the destination.
func (c *Conn) Send(b []byte, dst netip.AddrPort) error {
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	c.n.send(c.addr, dst, b)
	return nil
}

// LocalAddr is the Conn's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.addr }

// FirstIncarnation is the incarnation the network drew for this Conn.
func (c *Conn) FirstIncarnation() uint32 { return c.inc }

// Close ends every Recv.
func (c *Conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
