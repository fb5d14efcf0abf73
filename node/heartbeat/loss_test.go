package heartbeat

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestLossyLinkNoFalseDeath: four members, and the link between A and B
// loses 60% of its datagrams each way (a simnet.Relay in front of each
// end), more than retransmission within a probe's timeout hides: A's and
// B's direct probes of each other fail often enough that they suspect
// each other and ask C and D for indirect probes. The test runs until the
// helpers have relayed a number of those, and no member is declared dead:
// C and D reach B for A (and A for B). A suspicion gets a long timeout,
// so that a loaded machine's slow round is not a death on a good link.
func TestLossyLinkNoFalseDeath(t *testing.T) {
	cfg := DefaultConfig().WithInterval(2 * testInterval)
	cfg.SuspicionMin = 3 * cfg.Interval
	cfg.Logger = quiet
	eps := make([]*rfc.Endpoint, 4)
	for i := range eps {
		eps[i] = newEndpoint(t, uint32(i+1), nil)
	}
	a, b, c, d := eps[0], eps[1], eps[2], eps[3]
	relay := func(to *rfc.Endpoint, seed int64) *simnet.Relay {
		r, err := simnet.NewRelay(to.Addr(), simnet.RelayConfig{Faults: simnet.Faults{Loss: 0.60}, Seed: uint64(seed)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	toB, toA := relay(b, 1), relay(a, 2)
	nodes := []*node{
		startNode(t, a, cfg, []netip.AddrPort{c.Addr(), d.Addr()}),
		startNode(t, b, cfg, []netip.AddrPort{c.Addr(), d.Addr()}),
		startNode(t, c, cfg, []netip.AddrPort{a.Addr(), b.Addr(), d.Addr()}),
		startNode(t, d, cfg, []netip.AddrPort{a.Addr(), b.Addr(), c.Addr()}),
	}
	// A helper finds the target by node id: C and D must have heard A and
	// B before these start probing each other over the lossy link.
	known := func(n *node, want int) bool { return settled(n) && len(n.svc.Members()) == want }
	if !waitFor(30*time.Second, func() bool {
		return known(nodes[0], 2) && known(nodes[1], 2) && known(nodes[2], 3) && known(nodes[3], 3)
	}) {
		t.Fatal("members never heard each other")
	}
	if err := nodes[0].svc.AddMember(toB.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].svc.AddMember(toA.Addr()); err != nil {
		t.Fatal(err)
	}
	// A helper is told the target's node id, which A learns only from a
	// reply through the lossy link: until A has heard B once (and B A),
	// a suspicion cannot be helped. From then on no death is allowed.
	heard := func(n *node, addr netip.AddrPort) bool {
		info, ok := n.svc.Member(addr)
		return ok && info.Node != 0 && info.State == StateAlive
	}
	if !waitFor(60*time.Second, func() bool { return heard(nodes[0], toB.Addr()) && heard(nodes[1], toA.Addr()) }) {
		t.Fatal("A and B never heard each other over the lossy link")
	}
	var deaths0, events0 [4]uint64
	relayedNow := func() uint64 { return nodes[2].svc.Stats().Relayed + nodes[3].svc.Stats().Relayed }
	relayed0 := relayedNow()
	for i, n := range nodes {
		deaths0[i], events0[i] = n.svc.Stats().Deaths, uint64(n.log.count(EventDead, netip.AddrPort{}))
	}
	const relayed = 6
	dead := func() bool {
		for i, n := range nodes {
			if n.svc.Stats().Deaths != deaths0[i] {
				return true
			}
		}
		return false
	}
	ok := waitFor(120*time.Second, func() bool { return dead() || relayedNow()-relayed0 >= relayed })
	for i, n := range nodes {
		st := n.svc.Stats()
		t.Logf("node %c: %+v (deaths before both ends heard each other: %d)", 'A'+i, st, deaths0[i])
		if st.Deaths != deaths0[i] || uint64(n.log.count(EventDead, netip.AddrPort{})) != events0[i] {
			t.Errorf("node %c declared a member dead", 'A'+i)
		}
	}
	if !ok {
		t.Fatalf("C and D relayed %d indirect probes, want %d", relayedNow()-relayed0, relayed)
	}
	if toB.C.Dropped.Load() == 0 || toA.C.Dropped.Load() == 0 {
		t.Fatal("the relays dropped nothing")
	}
	if st := stateOf(nodes[0].svc, toB.Addr()); st == StateDead {
		t.Fatalf("A sees B %v", st)
	}
}

// TestSaturatedWorkerAlive: a worker whose ordinary queue is kept full by
// a flood of slow calls from a third endpoint (not a member, so its
// traffic is no sign of life between master and worker) still answers
// heartbeats, because they go to the priority worker ahead of the flood.
// The master hears the worker only through heartbeats here: it probes,
// and every probe succeeds (a heartbeat queued behind the flood would be
// answered EBUSY and counted as a failed probe), and neither side is
// declared dead.
func TestSaturatedWorkerAlive(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ProbeTimeout = cfg.Interval * 9 / 10 // the machine may be loaded
	cfg.RoundTimeout = cfg.Interval
	cfg.Logger = quiet
	master := newEndpoint(t, 1, nil)
	worker := newEndpoint(t, 2, func(c *rfc.Config) { c.Workers = 2; c.QueueLen = 32 })
	flooder := newEndpoint(t, 3, nil)
	const callBusy = wire.CallUserBase + 7
	if err := worker.Register(callBusy, "busy", nil, rfc.Idempotent, func(*rfc.Request, *wire.Params) wire.Errno {
		time.Sleep(5 * time.Millisecond) // holds a worker without taking a core
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls, busy atomic.Uint64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for g := 0; g < 48; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
				err := flooder.Call(cctx, worker.Addr(), callBusy, nil, nil)
				ccancel()
				calls.Add(1)
				if errnoOf(err) == wire.EBUSY {
					busy.Add(1)
				}
			}
		}()
	}
	// The flood is on before the members start: every heartbeat between
	// them meets a full queue.
	if !waitFor(10*time.Second, func() bool { return busy.Load() > 0 }) {
		t.Fatal("the worker was never saturated")
	}
	mn := startNode(t, master, cfg, []netip.AddrPort{worker.Addr()})
	wn := startNode(t, worker, cfg, []netip.AddrPort{master.Addr()})
	const probes = 20
	ok := waitFor(120*time.Second, func() bool { return mn.svc.Stats().Probes >= probes })
	busyBefore := busy.Load()
	if !waitFor(10*time.Second, func() bool { return busy.Load() > busyBefore }) {
		t.Fatal("the flood stopped saturating the worker")
	}
	cancel()
	wg.Wait()
	ms, ws := mn.svc.Stats(), wn.svc.Stats()
	t.Logf("calls %d, EBUSY %d; master %+v; worker %+v", calls.Load(), busy.Load(), ms, ws)
	if !ok {
		t.Fatalf("the master sent %d probes, want %d", ms.Probes, probes)
	}
	// A heartbeat queued behind the flood is answered EBUSY: nearly every
	// probe of the master would fail. A probe may also time out when the
	// machine is loaded, in either direction alike (every reply and every
	// request of the pair goes through the worker's swamped reader): the
	// worker's probes of the master, which meet no full queue, are the
	// control.
	control := 0.0
	if ws.Probes >= 5 {
		control = float64(ws.ProbeFails) / float64(ws.Probes)
	}
	if float64(ms.ProbeFails)/float64(ms.Probes) > control+0.25 {
		t.Fatalf("the master's heartbeats failed under the worker's full queue: %d of %d probes (the worker's: %d of %d)",
			ms.ProbeFails, ms.Probes, ws.ProbeFails, ws.Probes)
	}
	if ms.Deaths+ws.Deaths != 0 {
		t.Fatal("a saturated worker (or its master) was declared dead")
	}
}

// TestBrokenLinkIndirect: once the members have heard each other, the
// link between A and B is cut both ways (every datagram dropped) while
// both stay reachable from C. A's probes of B fail, but A neither
// suspects B nor declares it dead, because C's indirect probes reach B;
// and the same the other way round.
func TestBrokenLinkIndirect(t *testing.T) {
	// The default interval: the members must not suspect C on a loaded
	// machine.
	cfg := DefaultConfig()
	cfg.Logger = quiet
	eps := make([]*rfc.Endpoint, 3)
	for i := range eps {
		eps[i] = newEndpoint(t, uint32(i+1), nil)
	}
	a, b, c := eps[0], eps[1], eps[2]
	cut := func(to *rfc.Endpoint) *simnet.Relay {
		r, err := simnet.NewRelay(to.Addr(), simnet.RelayConfig{})
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
	if !waitFor(10*time.Second, func() bool { return settled(na) && settled(nb) && settled(nc) }) {
		t.Fatal("members never heard each other")
	}
	toB.Cut()
	toA.Cut()
	// Run until A and B have each gone through several indirect rounds
	// (or one of them declared a death, which fails below).
	const rounds = 5
	waitFor(120*time.Second, func() bool {
		sa, sb := na.svc.Stats(), nb.svc.Stats()
		return sa.Deaths+sb.Deaths != 0 || (sa.IndirectSent >= rounds && sb.IndirectSent >= rounds)
	})
	for _, n := range []*node{na, nb, nc} {
		t.Logf("%v: %+v", n.ep.Addr(), n.svc.Stats())
		n.log.mu.Lock()
		for _, ev := range n.log.evs {
			if ev.Kind == EventSuspect || ev.Kind == EventDead {
				t.Logf("%v: %v %v at %v", n.ep.Addr(), ev.Kind, ev.Addr, time.Duration(ev.AtNs))
			}
		}
		n.log.mu.Unlock()
	}
	for _, n := range []*node{na, nb} {
		st := n.svc.Stats()
		if st.Deaths != 0 {
			t.Fatalf("%v declared a member dead over one broken link", n.ep.Addr())
		}
		if st.IndirectSent < rounds {
			t.Fatalf("%v ran %d indirect rounds across the cut, want %d", n.ep.Addr(), st.IndirectSent, rounds)
		}
	}
	if nc.svc.Stats().Relayed == 0 {
		t.Fatal("C ran no indirect probe")
	}
}

// TestBrokenLinkLateRound: A and B cannot reach each other, both reach
// C. One indirect round of B's about A runs late (its request to C is
// held for an Interval, longer than RoundTimeout), so B suspects A on
// its own evidence while C, which hears A every Interval, neither adopts
// the suspicion nor passes it on, and B's own probes of A, which carry
// it, are lost on the cut. B keeps running indirect rounds of A while it
// suspects it: their requests carry the suspicion, C's probe tells A, A
// refutes, and C's ack that it reached A clears the suspicion at B. No
// member may declare A dead, and B's view of A must be alive again.
// (TestBrokenLinkIndirect, on real sockets at load, declared A dead in
// about 3 runs of 40 this way: B ran no round of A while it suspected
// it, and A never heard that it was suspected.)
func TestBrokenLinkLateRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, addrs := simNet(t, 1, nil, 3)
		a, b, c := addrs[0], addrs[1], addrs[2]
		cfg := DefaultConfig().WithInterval(100 * time.Millisecond)
		cfg.Logger = quiet
		nodes, stop := simCluster(t, net, cfg, []netip.AddrPort{a, b, c},
			[][]netip.AddrPort{{b, c}, {a, c}, {a, b}})
		defer stop()
		na, nb, nc := nodes[0], nodes[1], nodes[2]
		// Every member has heard every other (a helper finds the target
		// by node id).
		time.Sleep(5 * cfg.Interval)
		synctest.Wait()
		for _, n := range nodes {
			if !settled(n) {
				t.Fatalf("%v before the cut: %+v", n.ep.Addr(), n.svc.Members())
			}
		}
		net.Cut(a, b)
		net.Cut(b, a)
		// Hold B's datagrams to C while B sends its first indirect
		// request after the cut: that round's acks come after its end.
		slow := simnet.Faults{Delay: simnet.Dist{Base: cfg.Interval}}
		net.SetFaults(b, c, slow)
		sent := nb.svc.Stats().IndirectSent
		for i := 0; nb.svc.Stats().IndirectSent == sent; i++ {
			if i == int(10*cfg.Interval/time.Millisecond) {
				t.Fatal("B opened no indirect round across the cut")
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
		}
		net.SetFaults(b, c, calmLink)
		time.Sleep(10 * cfg.Interval)
		synctest.Wait()
		if nb.log.count(EventSuspect, a) == 0 {
			t.Errorf("B never suspected A: the late round did not run late")
		}
		for _, n := range nodes {
			if d := n.log.count(EventDead, a); d != 0 {
				t.Errorf("%v declared A dead %d times; A is reached through C", n.ep.Addr(), d)
			}
		}
		if st := stateOf(nb.svc, a); st != StateAlive {
			t.Errorf("B holds A %v 10 intervals on, want alive", st)
		}
		if nc.svc.Stats().Relayed == 0 {
			t.Errorf("C ran no indirect probe")
		}
		t.Logf("A %+v\nB %+v", na.svc.Stats(), nb.svc.Stats())
	})
}
