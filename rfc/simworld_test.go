package rfc

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc/internal/testenv"
	"fastcall/rfc/simnet"
)

// simWorld is the calm simulated network in a testing/synctest bubble
// that rfctest.Sim is for the packages above (rfc/internal/testenv), for
// the tests that need time to pass or a datagram not to come rather than
// the kernel's socket: time is virtual, so a wait is exact and takes no
// real time, a timeout that expires proves that nothing came (every
// goroutine of the bubble was blocked until then), and an elapsed time
// can be asserted exactly. Endpoints on it have no socket and no bell
// (docs/SIMULATION.md); the socket path keeps its real tests.
type simWorld struct {
	*testenv.Sim
}

// inSim runs fn inside a bubble with a calm network: no faults, no delay.
// Everything fn opens is closed by its cleanups, inside the bubble.
func inSim(t *testing.T, fn func(t *testing.T, w *simWorld)) {
	testenv.InSim(t, func(t *testing.T, s *testenv.Sim) { fn(t, &simWorld{s}) })
}

// attach returns the Conn of a new loopback address on the network.
func (w *simWorld) attach() *simnet.Conn { return w.Net.Attach(w.Addr()) }

// endpoint is newTestEndpoint on the simulated network.
func (w *simWorld) endpoint(mod func(*Config)) *Endpoint {
	w.T().Helper()
	return w.endpointOn(w.attach(), mod)
}

// endpointOn is endpoint on the Conn c, for a test that also sends on c
// to play a datagram from the endpoint's own address.
func (w *simWorld) endpointOn(c *simnet.Conn, mod func(*Config)) *Endpoint {
	w.T().Helper()
	return testenv.Open(w.T(), DefaultConfig(), mod, func(cfg Config) (*Endpoint, error) {
		return ListenTransport(cfg, c)
	})
}

// server is newTestServer on the simulated network.
func (w *simWorld) server(mod func(*Config)) *testServer {
	return registerTestCalls(w.T(), w.endpoint(mod))
}

// deadAddr is an address on the network where nothing listens.
func (w *simWorld) deadAddr() netip.AddrPort { return w.Addr() }

// rawSender is newRawSender on the simulated network.
func (w *simWorld) rawSender(to netip.AddrPort, key []byte, src, inc uint32) *rawSender {
	t := w.T()
	r := &simRaw{c: w.attach(), in: make(chan []byte, simnet.InboxLen)}
	t.Cleanup(func() { r.c.Close() })
	go r.read()
	return rawSenderOn(t, nil, r, to, key, src, inc)
}

// simRaw is a raw peer's Conn and the datagrams its reader received.
type simRaw struct {
	c  *simnet.Conn
	in chan []byte
}

// read moves what arrives to in until the Conn closes.
func (r *simRaw) read() {
	for {
		b := make([]byte, 2048)
		n, _, err := r.c.Recv(b)
		if err != nil {
			return
		}
		select {
		case r.in <- b[:n]:
		default: // a peer that does not read drops, as a full socket would
		}
	}
}

func (r *simRaw) send(t *testing.T, b []byte, to netip.AddrPort) {
	if err := r.c.Send(b, to); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next datagram within d of virtual time, or false: in a
// bubble, false means nothing was on its way.
func (r *simRaw) recv(d time.Duration) ([]byte, bool) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case b := <-r.in:
		return b, true
	case <-tm.C:
		return nil, false
	}
}
