package heartbeat

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/faultnet"
	"fastcall/wire"
)

// TestLossyLinkNoFalseDeath: four members, and the link between A and B
// loses 20% of datagrams each way (a faultnet relay in front of each end).
// Over a bounded run with the default thresholds no member is declared
// dead: when A's probes of B fail, C and D reach B for it.
func TestLossyLinkNoFalseDeath(t *testing.T) {
	run := 100 * testInterval
	if testing.Short() {
		run = 40 * testInterval
	}
	cfg := testConfig()
	eps := make([]*rfc.Endpoint, 4)
	for i := range eps {
		eps[i] = newEndpoint(t, uint32(i+1), nil)
	}
	a, b, c, d := eps[0], eps[1], eps[2], eps[3]
	relay := func(to *rfc.Endpoint, seed int64) *faultnet.Relay {
		r, err := faultnet.New(to.Addr(), &faultnet.Faults{Loss: 0.20, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	toB, toA := relay(b, 1), relay(a, 2)
	nodes := []*node{
		startNode(t, a, cfg, []netip.AddrPort{toB.Addr(), c.Addr(), d.Addr()}),
		startNode(t, b, cfg, []netip.AddrPort{toA.Addr(), c.Addr(), d.Addr()}),
		startNode(t, c, cfg, []netip.AddrPort{a.Addr(), b.Addr(), d.Addr()}),
		startNode(t, d, cfg, []netip.AddrPort{a.Addr(), b.Addr(), c.Addr()}),
	}
	time.Sleep(run)
	for i, n := range nodes {
		st := n.svc.Stats()
		t.Logf("node %c: %+v", 'A'+i, st)
		if st.Deaths != 0 || n.log.count(EventDead, netip.AddrPort{}) != 0 {
			t.Errorf("node %c declared a member dead", 'A'+i)
		}
	}
	if toB.C.Dropped.Load() == 0 || toA.C.Dropped.Load() == 0 {
		t.Fatal("the relays dropped nothing")
	}
	if st := stateOf(nodes[0].svc, toB.Addr()); st == StateDead {
		t.Fatalf("A sees B %v", st)
	}
}

// TestSaturatedWorkerAlive: a worker whose ordinary queue is kept full by
// a flood of slow calls still answers heartbeats (they are served by the
// priority worker, ahead of the flood) and is never declared dead.
func TestSaturatedWorkerAlive(t *testing.T) {
	run := 60 * testInterval
	cfg := testConfig()
	master := newEndpoint(t, 1, nil)
	worker := newEndpoint(t, 2, func(c *rfc.Config) { c.Workers = 2; c.QueueLen = 32 })
	const callBusy = wire.CallUserBase + 7
	if err := worker.Register(callBusy, "busy", nil, rfc.Idempotent, func(*rfc.Request, *wire.Params) wire.Errno {
		end := time.Now().Add(2 * time.Millisecond)
		for time.Now().Before(end) {
		}
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	mn := startNode(t, master, cfg, []netip.AddrPort{worker.Addr()})
	wn := startNode(t, worker, cfg, []netip.AddrPort{master.Addr()})

	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var calls, busy atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < 48; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
				err := master.Call(cctx, worker.Addr(), callBusy, nil, nil)
				ccancel()
				calls.Add(1)
				if errnoOf(err) == wire.EBUSY {
					busy.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("calls %d, EBUSY %d; master %+v; worker %+v", calls.Load(), busy.Load(), mn.svc.Stats(), wn.svc.Stats())
	if busy.Load() == 0 {
		t.Fatal("the worker was never saturated")
	}
	if mn.svc.Stats().Deaths != 0 || wn.svc.Stats().Deaths != 0 {
		t.Fatal("a saturated worker (or its master) was declared dead")
	}
	if stateOf(mn.svc, worker.Addr()) == StateDead {
		t.Fatal("worker dead")
	}
}

// TestBrokenLinkIndirect: once the members have heard each other, the
// link between A and B is cut both ways (every datagram dropped) while
// both stay reachable from C. A suspects B
// but never declares it dead, because C's indirect probes reach B; and
// the same the other way round.
func TestBrokenLinkIndirect(t *testing.T) {
	cfg := testConfig()
	// A round must hold an indirect probe's two extra hops even when the
	// machine is loaded (race detector, other suites on two cores).
	cfg.RoundTimeout = 4 * testInterval
	eps := make([]*rfc.Endpoint, 3)
	for i := range eps {
		eps[i] = newEndpoint(t, uint32(i+1), nil)
	}
	a, b, c := eps[0], eps[1], eps[2]
	cut := func(to *rfc.Endpoint) *faultnet.Relay {
		r, err := faultnet.New(to.Addr(), &faultnet.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	toB, toA := cut(b), cut(a)
	na := startNode(t, a, cfg, []netip.AddrPort{toB.Addr(), c.Addr()})
	nb := startNode(t, b, cfg, []netip.AddrPort{toA.Addr(), c.Addr()})
	nc := startNode(t, c, cfg, []netip.AddrPort{a.Addr(), b.Addr()})
	// A helper finds the target by node id: every member must have heard
	// every other before the cut.
	known := func(n *node) bool {
		for _, m := range n.svc.Members() {
			if m.Node == 0 {
				return false
			}
		}
		return true
	}
	if !waitFor(2*time.Second, func() bool { return known(na) && known(nb) && known(nc) }) {
		t.Fatal("members never heard each other")
	}
	toB.F.Blackhole.Store(true)
	toA.F.Blackhole.Store(true)
	time.Sleep(30 * testInterval)
	for _, n := range []*node{na, nb} {
		st := n.svc.Stats()
		t.Logf("%v: %+v", n.ep.Addr(), st)
		if st.Deaths != 0 {
			t.Fatalf("%v declared a member dead over one broken link", n.ep.Addr())
		}
		if st.Suspects == 0 || st.IndirectSent == 0 {
			t.Fatalf("%v never suspected its peer across the cut", n.ep.Addr())
		}
	}
	if nc.svc.Stats().Relayed == 0 {
		t.Fatal("C ran no indirect probe")
	}
}
