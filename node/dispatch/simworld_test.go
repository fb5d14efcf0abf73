package dispatch

import (
	"net/netip"
	"testing"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// simWorld is a simulated network (rfc/simnet) inside a testing/synctest
// bubble (rfctest.Sim), for the tests whose subject is time (deadlines,
// retention, how long Close takes, that nothing is sent): time is
// virtual, so a bound is asserted exactly and a wait takes no real time.
// The socket path keeps its real tests.
type simWorld struct {
	t *testing.T
	s *rfctest.Sim
}

// inSim runs fn inside a bubble with a calm network: no faults, no delay.
// Everything fn opens is closed by its cleanups, inside the bubble.
func inSim(t *testing.T, fn func(t *testing.T, w *simWorld)) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		fn(t, &simWorld{t: t, s: s})
	})
}

// addr returns a new loopback address on the network.
func (w *simWorld) addr() netip.AddrPort { return w.s.Addr() }

// ep is newEP on the simulated network.
func (w *simWorld) ep(node uint32, mod func(*rfc.Config)) *rfc.Endpoint {
	w.t.Helper()
	return w.s.Listen(node, mod)
}

// targets is startTargets on the simulated network.
func (w *simWorld) targets(n int) *targets {
	return startTargetsOn(w.t, n, w.ep)
}
