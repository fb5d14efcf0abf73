package rfctest

import (
	"net/netip"
	"testing"
	"testing/synctest"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// Sim is a calm simulated network (rfc/simnet: no loss, no delay) inside
// a testing/synctest bubble, for the tests whose subject is time (a TTL,
// a lease, a deadline): time is virtual, so a wait is exact and takes no
// real time, and a bound is asserted exactly. Endpoints on it have no
// socket and no bell (docs/SIMULATION.md); the socket path keeps its real
// tests.
type Sim struct {
	t    testing.TB
	Net  *simnet.Network
	next int // last host number handed out
}

// InSim runs fn inside a bubble with a calm network. Everything fn opens
// through the Sim is closed by its cleanups, inside the bubble, the
// network last. t.Run cannot be called inside a bubble.
func InSim(t *testing.T, fn func(t *testing.T, s *Sim)) {
	synctest.Test(t, func(t *testing.T) {
		s := &Sim{t: t, Net: simnet.New(1, simnet.Faults{}, nil)}
		t.Cleanup(s.Net.Close) // last: after the endpoints
		fn(t, s)
	})
}

// Addr returns a new loopback address on the network, where nothing
// listens until an endpoint is attached there.
func (s *Sim) Addr() netip.AddrPort {
	s.next++
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(s.next >> 8), byte(s.next)}), 7000)
}

// Listen is Listen on the simulated network: an endpoint at a new
// address, closed when the test ends.
func (s *Sim) Listen(node uint32, mod func(*rfc.Config)) *rfc.Endpoint {
	s.t.Helper()
	cfg := Config(node)
	if mod != nil {
		mod(&cfg)
	}
	ep, err := rfc.ListenTransport(cfg, s.Net.Attach(s.Addr()))
	if err != nil {
		s.t.Fatalf("ListenTransport: %v", err)
	}
	s.t.Cleanup(func() { ep.Close() })
	return ep
}
