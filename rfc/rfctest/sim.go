package rfctest

import (
	"testing"

	"fastcall/rfc"
	"fastcall/rfc/internal/testenv"
)

// Sim is a calm simulated network (rfc/simnet: no loss, no delay) inside
// a testing/synctest bubble, for the tests whose subject is time (a TTL,
// a lease, a deadline): time is virtual, so a wait is exact and takes no
// real time, and a bound is asserted exactly. Endpoints on it have no
// socket and no bell (docs/SIMULATION.md); the socket path keeps its real
// tests. Net is the network and Addr a new address on it, as rfc's own
// tests have them.
type Sim struct {
	*testenv.Sim
}

// InSim runs fn inside a bubble with a calm network. Everything fn opens
// through the Sim is closed by its cleanups, inside the bubble, the
// network last. t.Run cannot be called inside a bubble.
func InSim(t *testing.T, fn func(t *testing.T, s *Sim)) {
	testenv.InSim(t, func(t *testing.T, s *testenv.Sim) { fn(t, &Sim{s}) })
}

// Listen is Listen on the simulated network: an endpoint at a new
// address, closed when the test ends.
func (s *Sim) Listen(node uint32, mod func(*rfc.Config)) *rfc.Endpoint {
	s.T().Helper()
	return testenv.Open(s.T(), Config(node), mod, func(cfg rfc.Config) (*rfc.Endpoint, error) {
		return rfc.ListenTransport(cfg, s.Net.Attach(s.Addr()))
	})
}
