package heartbeat

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// quiet is a logger for tests: state changes are expected and noisy.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const testInterval = 50 * time.Millisecond

// testConfig is the default configuration at the test interval.
func testConfig() Config { return configAt(testInterval) }

// calmLink is the link of the tests' simulated networks: every datagram
// delayed 1 ms, none lost.
var calmLink = simnet.Faults{Delay: simnet.Dist{Base: time.Millisecond}}

// simNet returns a simulated network of calm links (calmLink) seeded with
// seed, whose datagrams tr traces (nil: none), and n member addresses on
// it, 10.0.0.1:7100 upward. The network is closed when the test ends,
// after what the test's defers and later cleanups close. It must run
// inside a synctest bubble.
func simNet(t *testing.T, seed uint64, tr *simnet.Trace, n int) (*simnet.Network, []netip.AddrPort) {
	net := simnet.New(seed, calmLink, tr)
	t.Cleanup(net.Close)
	addrs := make([]netip.AddrPort, n)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 7100)
	}
	return net, addrs
}

// configAt is the default configuration at interval d, logging to quiet.
func configAt(d time.Duration) Config {
	c := DefaultConfig().WithInterval(d)
	c.Logger = quiet
	return c
}

// newEndpoint opens a loopback endpoint for node, closed when the test
// ends (rfctest.Listen).
var newEndpoint = rfctest.Listen

// eventLog records a service's events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) count(kind EventKind, addr netip.AddrPort) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Kind == kind && (!addr.IsValid() || ev.Addr == addr) {
			n++
		}
	}
	return n
}

// node is one member of an in-process cluster.
type node struct {
	ep  *rfc.Endpoint
	svc *Service
	log *eventLog
}

// startNode starts a service on ep with members and records its events.
func startNode(t testing.TB, ep *rfc.Endpoint, cfg Config, members []netip.AddrPort) *node {
	t.Helper()
	svc, err := Start(ep, cfg, members)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(svc.Close)
	n := &node{ep: ep, svc: svc, log: new(eventLog)}
	svc.OnEvent(n.log.add)
	return n
}

// startTold starts node 1 with two members that tests tell it about
// each other: the teller (node 2), an endpoint the test sends updates
// from, and the victim (node 4), an address nothing answers on, so that
// node 1 never hears it. The interval is the test's, long enough that
// node 1's own probes of the victim come too late to be what the test
// sees; a dead victim is not probed again within the test.
func startTold(t *testing.T, interval time.Duration) (x *node, teller *rfc.Endpoint, victim netip.AddrPort) {
	t.Helper()
	cfg := configAt(interval)
	cfg.ReprobeInterval = time.Hour
	teller = newEndpoint(t, 2, nil)
	gone := newEndpoint(t, 4, nil)
	victim = gone.Addr()
	gone.Close()
	x = startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{teller.Addr(), victim})
	return x, teller, victim
}

// newTestMaster starts a Master at the default configuration on svc,
// closed when the test ends.
func newTestMaster(t testing.TB, svc *Service) *Master {
	t.Helper()
	m, err := NewMaster(svc, DefaultMasterConfig())
	if err != nil {
		t.Fatalf("NewMaster: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// newTestWorker starts a Worker on svc running fn, closed when the test
// ends.
func newTestWorker(t testing.TB, svc *Service, cfg WorkerConfig, fn TaskFunc) *Worker {
	t.Helper()
	wk, err := NewWorker(svc, cfg, fn)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	t.Cleanup(wk.Close)
	return wk
}

// cluster starts n fully meshed members on loopback.
func cluster(t testing.TB, n int, cfg Config) []*node {
	t.Helper()
	eps := make([]*rfc.Endpoint, n)
	addrs := make([]netip.AddrPort, n)
	for i := range eps {
		eps[i] = newEndpoint(t, uint32(i+1), nil)
		addrs[i] = eps[i].Addr()
	}
	nodes := make([]*node, n)
	for i := range eps {
		nodes[i] = startNode(t, eps[i], cfg, addrs)
	}
	return nodes
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

// waitHeard waits up to d until n has heard from addr (knows its node
// id), and fails the test if it has not.
func waitHeard(t testing.TB, n *node, addr netip.AddrPort, d time.Duration) {
	t.Helper()
	if !waitFor(d, func() bool { info, _ := n.svc.Member(addr); return info.Node != 0 }) {
		t.Fatalf("%v never heard from %v", n.ep.Addr(), addr)
	}
}

// pair starts a cluster of two at testConfig.
func pair(t testing.TB) (a, b *node) {
	t.Helper()
	nodes := cluster(t, 2, testConfig())
	return nodes[0], nodes[1]
}

// heardPair starts a pair and waits until the first member has heard
// from the second.
func heardPair(t testing.TB) (a, b *node) {
	t.Helper()
	a, b = pair(t)
	waitHeard(t, a, b.ep.Addr(), 5*time.Second)
	return a, b
}

// sendHeartbeat sends one heartbeat from ep to dst carrying view v of
// dst and the given updates, and fails the test unless it is answered.
func sendHeartbeat(t testing.TB, ep *rfc.Endpoint, dst netip.AddrPort, v view, us ...update) {
	t.Helper()
	var b []byte
	for i := range us {
		b = putUpdate(b, &us[i])
	}
	var ps wire.Params
	heartbeatParams(&ps, make([]byte, 512), ep.Incarnation(), v, b)
	if err := ep.Call(ctxFor(t, 2*time.Second), dst, CallHeartbeat, &ps, nil); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
}

// settled reports whether n holds every member it lists alive and has
// heard from each (knows its node id): a helper of an indirect probe
// finds the target by node id, so tests of indirect rounds wait for it.
func settled(n *node) bool {
	for _, m := range n.svc.Members() {
		if m.State != StateAlive || m.Node == 0 {
			return false
		}
	}
	return true
}

func stateOf(s *Service, addr netip.AddrPort) State {
	info, _ := s.Member(addr)
	return info.State
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func errnoOf(err error) wire.Errno { return wire.AsErrno(err) }
