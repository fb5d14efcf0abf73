package simnet

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Relay is the fault model on real sockets: a user-space UDP relay on
// loopback between clients and one server that draws each datagram's
// fate from Faults.Decide, as the simulated Network does, and acts on it
// with real sockets and real timers (the test kernel has no netem). Use
// it only where a test needs the kernel's sockets; a test that needs
// only the faults runs on a Network.
//
// Each client gets its own upstream socket, so the server sees distinct
// peers for distinct clients. Both directions draw from one generator
// seeded with RelayConfig.Seed, in the order datagrams arrive: the
// decisions are the model's, the order is the kernel's, so a run does not
// replay.
type Relay struct {
	C RelayCounters

	faults     Faults
	cut        *atomic.Bool
	cutReplies atomic.Bool // CutReplies: the server's datagrams are dropped
	front      *net.UDPConn
	server     netip.AddrPort

	mu struct {
		sync.Mutex
		rnd     *Rand
		clients map[netip.AddrPort]*net.UDPConn
	}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// RelayCounters report what a Relay did. Forwarded, Corrupted and
// Reordered count copies (a duplicated datagram is two).
type RelayCounters struct {
	Forwarded, Dropped, Duplicated, Corrupted, Reordered atomic.Uint64
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	Faults Faults // each direction, each datagram
	Seed   uint64
	// Cut, when not nil, is the relay's partition switch: while it is
	// set every datagram is dropped, each way. Nil: the relay has one
	// of its own (Relay.Cut, Relay.Heal).
	Cut *atomic.Bool
}

// NewRelay starts a relay on a loopback port in front of server.
func NewRelay(server netip.AddrPort, cfg RelayConfig) (*Relay, error) {
	front, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, err
	}
	r := &Relay{faults: cfg.Faults, cut: cfg.Cut, front: front, server: server}
	if r.cut == nil {
		r.cut = new(atomic.Bool)
	}
	r.mu.rnd = NewRand(cfg.Seed)
	r.mu.clients = map[netip.AddrPort]*net.UDPConn{}
	r.wg.Add(1)
	go r.frontLoop()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Cut drops every datagram, each way, until Heal (a symmetric partition).
func (r *Relay) Cut() { r.cut.Store(true) }

// CutReplies drops every datagram from the server to clients until Heal,
// and forwards what clients send (a one-way partition): the server runs
// each request, its client never learns that it did.
func (r *Relay) CutReplies() { r.cutReplies.Store(true) }

// Heal ends a Cut and a CutReplies.
func (r *Relay) Heal() {
	r.cut.Store(false)
	r.cutReplies.Store(false)
}

// Close stops the relay and waits for its goroutines; datagrams still
// delayed are dropped.
func (r *Relay) Close() {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	r.front.Close()
	r.mu.Lock()
	for _, c := range r.mu.clients {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// frontLoop reads what clients send and forwards it to the server, each
// client through its own upstream socket.
func (r *Relay) frontLoop() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		up := r.upstream(from)
		if up == nil {
			return
		}
		r.forward(buf[:n], false, func(b []byte) { up.WriteToUDPAddrPort(b, r.server) })
	}
}

// Upstream opens client's upstream socket if it is not open yet and
// returns its address: what the server sees as the source of client's
// datagrams. A datagram the server sends there goes to client through the
// front socket, with the same faults, so a server that calls client at
// this address and a client that calls the server at Addr both go through
// the relay, each seeing the other at one address. ok is false once the
// relay is closed.
func (r *Relay) Upstream(client netip.AddrPort) (addr netip.AddrPort, ok bool) {
	c := r.upstream(client)
	if c == nil {
		return netip.AddrPort{}, false
	}
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), true
}

// upstream returns client's upstream socket, opening it and starting its
// reader (which forwards the server's replies to client) on first use.
func (r *Relay) upstream(client netip.AddrPort) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.mu.clients[client]; c != nil {
		return c
	}
	if r.closed.Load() {
		return nil
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil
	}
	r.mu.clients[client] = c
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.forward(buf[:n], true, func(b []byte) { r.front.WriteToUDPAddrPort(b, client) })
		}
	}()
	return c
}

// forward draws the fate of one datagram, from the server if reply, and
// sends what survives, each copy after its delay.
func (r *Relay) forward(in []byte, reply bool, send func([]byte)) {
	if r.cut.Load() || reply && r.cutReplies.Load() {
		r.C.Dropped.Add(1)
		return
	}
	r.mu.Lock()
	fa := r.faults.Decide(r.mu.rnd, len(in))
	r.mu.Unlock()
	if fa.Lost {
		r.C.Dropped.Add(1)
		return
	}
	if fa.N > 1 {
		r.C.Duplicated.Add(1)
	}
	for i := 0; i < fa.N; i++ {
		cp := &fa.Copies[i]
		b := cp.Bytes(in)
		if cp.Corrupt {
			r.C.Corrupted.Add(1)
		}
		if cp.Reordered {
			r.C.Reordered.Add(1)
		}
		r.C.Forwarded.Add(1)
		if cp.Delay == 0 {
			send(b)
			continue
		}
		r.wg.Add(1)
		time.AfterFunc(cp.Delay, func() {
			defer r.wg.Done()
			if !r.closed.Load() {
				send(b)
			}
		})
	}
}
