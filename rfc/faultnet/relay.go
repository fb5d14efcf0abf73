// Package faultnet is a user-space UDP relay for tests: it sits between a
// client and a server on loopback and drops, duplicates, reorders, delays
// and corrupts datagrams at configured rates, since the test kernel has
// no netem. It is test infrastructure; production code never imports it.
package faultnet

import (
	"math/rand"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are per-datagram probabilities (0..1) and a delay range. Each
// direction draws independently.
type Faults struct {
	Loss      float64
	Dup       float64
	Corrupt   float64       // flip one random byte
	Reorder   float64       // hold the datagram for a random delay up to MaxDelay
	Delay     time.Duration // fixed extra delay for every datagram
	MaxDelay  time.Duration // upper bound of a reordering delay
	Seed      int64
	Blackhole atomic.Bool // drop everything while set (a partition)
}

// Counters report what the relay did.
type Counters struct {
	Forwarded, Dropped, Duplicated, Corrupted, Reordered atomic.Uint64
}

// Relay forwards between clients on its front address and one server.
// Each client gets its own upstream socket, so the server sees distinct
// peers for distinct clients.
type Relay struct {
	F      *Faults
	C      Counters
	front  *net.UDPConn
	server netip.AddrPort

	mu      sync.Mutex
	rng     *rand.Rand
	clients map[netip.AddrPort]*net.UDPConn
	wg      sync.WaitGroup
	closed  atomic.Bool
}

// New starts a relay on a loopback port in front of server.
func New(server netip.AddrPort, f *Faults) (*Relay, error) {
	front, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, err
	}
	r := &Relay{F: f, front: front, server: server, rng: rand.New(rand.NewSource(f.Seed)),
		clients: map[netip.AddrPort]*net.UDPConn{}}
	r.wg.Add(1)
	go r.frontLoop()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	r.front.Close()
	r.mu.Lock()
	for _, c := range r.clients {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

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
		r.forward(buf[:n], func(b []byte) { up.WriteToUDPAddrPort(b, r.server) })
	}
}

func (r *Relay) upstream(client netip.AddrPort) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.clients[client]; c != nil {
		return c
	}
	if r.closed.Load() {
		return nil
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil
	}
	r.clients[client] = c
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.forward(buf[:n], func(b []byte) { r.front.WriteToUDPAddrPort(b, client) })
		}
	}()
	return c
}

func (r *Relay) draw() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.Float64()
}

func (r *Relay) drawDelay(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Duration(r.rng.Int63n(int64(max)))
}

// forward applies the faults to one datagram and sends what survives.
func (r *Relay) forward(in []byte, send func([]byte)) {
	f := r.F
	if f.Blackhole.Load() || r.draw() < f.Loss {
		r.C.Dropped.Add(1)
		return
	}
	copies := 1
	if r.draw() < f.Dup {
		copies = 2
		r.C.Duplicated.Add(1)
	}
	for i := 0; i < copies; i++ {
		b := append([]byte(nil), in...)
		if len(b) > 0 && r.draw() < f.Corrupt {
			r.mu.Lock()
			b[r.rng.Intn(len(b))] ^= byte(1 + r.rng.Intn(255))
			r.mu.Unlock()
			r.C.Corrupted.Add(1)
		}
		d := f.Delay
		if r.draw() < f.Reorder {
			d += r.drawDelay(f.MaxDelay)
			r.C.Reordered.Add(1)
		}
		r.C.Forwarded.Add(1)
		if d == 0 {
			send(b)
			continue
		}
		r.wg.Add(1)
		time.AfterFunc(d, func() {
			defer r.wg.Done()
			if !r.closed.Load() {
				send(b)
			}
		})
	}
}
