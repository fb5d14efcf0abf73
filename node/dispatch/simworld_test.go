package dispatch

import (
	"net/netip"
	"testing"
	"testing/synctest"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// simWorld is a simulated network (rfc/simnet) inside a testing/synctest
// bubble, for the tests whose subject is time (deadlines, retention, how
// long Close takes, that nothing is sent): time is virtual, so a bound is
// asserted exactly and a wait takes no real time. The socket path keeps
// its real tests.
type simWorld struct {
	t    *testing.T
	net  *simnet.Network
	next int // last host number handed out
}

// inSim runs fn inside a bubble with a calm network: no faults, no delay.
// Everything fn opens is closed by its cleanups, inside the bubble.
func inSim(t *testing.T, fn func(t *testing.T, w *simWorld)) {
	synctest.Test(t, func(t *testing.T) {
		w := &simWorld{t: t, net: simnet.New(1, simnet.Faults{}, nil)}
		t.Cleanup(w.net.Close) // last: after the endpoints
		fn(t, w)
	})
}

// addr returns a new loopback address on the network.
func (w *simWorld) addr() netip.AddrPort {
	w.next++
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(w.next >> 8), byte(w.next)}), 7000)
}

// ep is newEP on the simulated network.
func (w *simWorld) ep(node uint32, mod func(*rfc.Config)) *rfc.Endpoint {
	w.t.Helper()
	cfg := rfc.DefaultConfig()
	cfg.NodeID = node
	cfg.Logger = quiet
	if mod != nil {
		mod(&cfg)
	}
	ep, err := rfc.ListenTransport(cfg, w.net.Attach(w.addr()))
	if err != nil {
		w.t.Fatalf("ListenTransport: %v", err)
	}
	w.t.Cleanup(func() { ep.Close() })
	return ep
}

// targets is startTargets on the simulated network.
func (w *simWorld) targets(n int) *targets {
	return startTargetsOn(w.t, n, w.ep)
}
