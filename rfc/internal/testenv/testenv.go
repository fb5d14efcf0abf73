// Package testenv is what rfc's own tests and rfc/rfctest share: rfc's
// tests cannot import rfctest (rfctest imports rfc), and this package
// imports neither, so the bare loopback socket, the bounded poll and the
// calm simulated network each have one owner. docs/TESTING.md ("Shared test helpers")
// describes it.
package testenv

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
)

// WaitFor polls cond every millisecond until it holds or d passes, and
// reports whether it held.
func WaitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Open opens an endpoint with listen (on a socket or a simulated
// network) on cfg, changed by mod when mod is not nil: rfc's tests and
// rfctest open theirs through it, with their own configuration and
// listen (testenv cannot name rfc's types, hence the type parameters).
// The endpoint is closed when the test ends; a failure to open ends the
// test.
func Open[C any, E io.Closer](t testing.TB, cfg C, mod func(*C), listen func(C) (E, error)) E {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	ep, err := listen(cfg)
	if err != nil {
		t.Fatalf("open an endpoint: %v", err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// UDP opens a bare UDP socket on 127.0.0.1 at a port the kernel picks,
// for a test that plays a peer by hand; it is closed when the test ends,
// and a failure to open ends the test.
func UDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Sim is a calm simulated network (rfc/simnet: no loss, no delay) inside
// a testing/synctest bubble, for the tests whose subject is time: time is
// virtual, so a wait is exact and takes no real time, and a timeout that
// expires proves that nothing came (every goroutine of the bubble was
// blocked until then).
type Sim struct {
	Net  *simnet.Network
	t    *testing.T
	next int // last host number handed out
}

// InSim runs fn inside a bubble with a calm network. Everything fn opens
// on it and closes by cleanups is closed inside the bubble, the network
// last. t.Run cannot be called inside a bubble.
func InSim(t *testing.T, fn func(t *testing.T, s *Sim)) {
	synctest.Test(t, func(t *testing.T) {
		s := &Sim{t: t, Net: simnet.New(1, simnet.Faults{}, nil)}
		t.Cleanup(s.Net.Close) // last: after the endpoints
		fn(t, s)
	})
}

// T is the test of the bubble, for the helpers that open endpoints on
// the network and close them when the test ends.
func (s *Sim) T() *testing.T { return s.t }

// Addr returns a new loopback address on the network, where nothing
// listens until something is attached there.
func (s *Sim) Addr() netip.AddrPort {
	s.next++
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(s.next >> 8), byte(s.next)}), 7000)
}
