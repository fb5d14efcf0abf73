// Package faultnet is the former fault-injecting UDP relay's API, kept as
// a thin compatibility layer over rfc/simnet, which owns the one fault
// model (simnet.Faults, drawn by Faults.Decide) and the real-socket relay
// (simnet.Relay). New code uses simnet.NewRelay where a test needs real
// sockets, and a simnet.Network in a testing/synctest bubble where it
// needs only the faults. It is test infrastructure; production code
// never imports it.
package faultnet

import (
	"net/netip"
	"sync/atomic"
	"time"

	"fastcall/rfc/simnet"
)

// Faults are per-datagram probabilities (0..1) and a delay range, each
// direction drawing independently. They map onto simnet.Faults: Loss,
// Dup, Corrupt and Reorder as they are, Delay as Delay.Base, MaxDelay as
// ReorderBy.
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

// Model returns f as the unified fault model.
func (f *Faults) Model() simnet.Faults {
	return simnet.Faults{Loss: f.Loss, Dup: f.Dup, Corrupt: f.Corrupt, Reorder: f.Reorder,
		Delay: simnet.Dist{Base: f.Delay}, ReorderBy: f.MaxDelay}
}

// Counters report what the relay did.
type Counters = simnet.RelayCounters

// Relay forwards between clients on its front address and one server.
// F is read when the relay starts, but for F.Blackhole, which is its
// partition switch throughout.
type Relay struct {
	F *Faults
	C *Counters
	r *simnet.Relay
}

// New starts a relay on a loopback port in front of server.
func New(server netip.AddrPort, f *Faults) (*Relay, error) {
	r, err := simnet.NewRelay(server, simnet.RelayConfig{Faults: f.Model(), Seed: uint64(f.Seed), Cut: &f.Blackhole})
	if err != nil {
		return nil, err
	}
	return &Relay{F: f, C: &r.C, r: r}, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() netip.AddrPort { return r.r.Addr() }

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() { r.r.Close() }
