package heartbeat

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestSuspicionTimeout: the Lifeguard timeout starts at
// SuspicionMaxMult times the shortest, falls with log(conf+1)/log(k+1),
// reaches the shortest at k = min(Confirmations, n-2) confirmations, and
// is the shortest where no other member could confirm; the shortest
// grows with log10(n) past ten members.
func TestSuspicionTimeout(t *testing.T) {
	c := DefaultConfig() // SuspicionMin 100ms, β 2, k 2
	lo1000 := time.Duration(float64(100*time.Millisecond) * math.Log10(1000))
	for _, tc := range []struct {
		n, conf int
		want    time.Duration
	}{
		{2, 0, 100 * time.Millisecond},
		{3, 0, 200 * time.Millisecond},
		{3, 1, 100 * time.Millisecond},
		{10, 0, 200 * time.Millisecond},
		{10, 3, 100 * time.Millisecond},
		{10, 9, 100 * time.Millisecond},
		{1000, 0, 2 * lo1000},
		{1000, 1, 2*lo1000 - time.Duration(float64(lo1000)*(math.Log(2)/math.Log(3)))},
		{1000, 2, lo1000},
		{1000, 3, lo1000},
	} {
		if got := suspicionTimeout(&c, tc.n, tc.conf); got != tc.want {
			t.Errorf("suspicionTimeout(n=%d, conf=%d) = %v, want %v", tc.n, tc.conf, got, tc.want)
		}
	}
}

// TestSuspicionConfirmDistinct: a confirmation counts once per observer;
// an unknown observer (0) never counts.
func TestSuspicionConfirmDistinct(t *testing.T) {
	var p suspicion
	for _, c := range []struct {
		from uint32
		want bool
	}{{7, true}, {7, false}, {0, false}, {8, true}, {9, true}, {8, false}} {
		if got := p.confirm(c.from); got != c.want {
			t.Fatalf("confirm(%d) = %v, want %v", c.from, got, c.want)
		}
	}
	if p.conf != 3 {
		t.Fatalf("%d confirmations, want 3", p.conf)
	}
}

// TestSuspicionHeardStartsTimer: a suspicion disseminated by a member
// makes this node suspect the member at once and declare it dead when
// its own suspicion timer expires, with no indirect round of its own (it
// need not fail to reach the member itself first).
func TestSuspicionHeardStartsTimer(t *testing.T) {
	x, teller, victim := startTold(t, time.Second)
	sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, from: 2, state: StateSuspect, inc: 0})
	if !waitFor(10*time.Second, func() bool { return x.log.count(EventDead, victim) == 1 }) {
		t.Fatalf("victim %v, events %+v, stats %+v", stateOf(x.svc, victim), x.log.evs, x.svc.Stats())
	}
	if st := x.svc.Stats(); st.IndirectSent != 0 || st.Suspects != 1 {
		t.Fatalf("dead after %d indirect probes and %d suspicions, want 0 and 1 (the suspicion heard): %+v",
			st.IndirectSent, st.Suspects, st)
	}
}

// TestDeathHeardShortestTimeout: a death disseminated by a member is a
// suspicion confirmed: this node declares the member dead after the
// shortest suspicion timeout, sooner than an indirect round of its own
// could end. The timer is read from the suspicion, not from the time the
// death took: a loaded machine runs the probe loop's ticks late and
// stretches the timer by its health, as it should.
func TestDeathHeardShortestTimeout(t *testing.T) {
	x, teller, victim := startTold(t, 4*time.Second)
	cfg := x.svc.Config()
	sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, state: StateDead, inc: 0})
	x.svc.mu.Lock()
	n := len(x.svc.mu.members) + 1
	to := suspicionTimeout(&cfg, n, x.svc.mu.members[victim].susp.conf)
	x.svc.mu.Unlock()
	if shortest := suspicionMin(&cfg, n); to != shortest || to >= cfg.RoundTimeout {
		t.Fatalf("suspicion timeout %v after the death was heard, want the shortest (%v), below a round (%v)", to, shortest, cfg.RoundTimeout)
	}
	if !waitFor(10*cfg.RoundTimeout, func() bool { return x.log.count(EventDead, victim) == 1 }) {
		t.Fatalf("victim %v, events %+v", stateOf(x.svc, victim), x.log.evs)
	}
	if x.log.count(EventSuspect, victim) != 1 {
		t.Fatalf("events %+v, want the victim suspect, then dead", x.log.evs)
	}
}

// TestAliveAboveSuspicionRevives: a suspicion heard, then the member's
// own refutation (alive at a higher incarnation) heard: alive again, no
// death.
func TestAliveAboveSuspicionRevives(t *testing.T) {
	x, teller, victim := startTold(t, 2*time.Second)
	sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, from: 2, state: StateSuspect, inc: 5})
	if st := stateOf(x.svc, victim); st != StateSuspect {
		t.Fatalf("victim %v after a suspicion, want suspect", st)
	}
	// An alive update at the suspected incarnation does not clear it.
	sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, state: StateAlive, inc: 5})
	if st := stateOf(x.svc, victim); st != StateSuspect {
		t.Fatalf("victim %v after alive at the same incarnation, want suspect", st)
	}
	sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, state: StateAlive, inc: 6})
	if st := stateOf(x.svc, victim); st != StateAlive {
		t.Fatalf("victim %v after alive at a higher incarnation, want alive", st)
	}
	if x.log.count(EventDead, victim) != 0 {
		t.Fatal("declared dead")
	}
}

// TestSuspicionRefutedThroughGossip: in a cluster of three that has
// settled, no gossip datagram is sent (nothing to disseminate); a member
// told that it is suspect refutes, disseminates its new incarnation
// (gossip datagrams while the update waits), the others hold it, and
// nobody is declared dead. A member heard within the Interval is not
// suspected on another's word.
func TestSuspicionRefutedThroughGossip(t *testing.T) {
	cfg := DefaultConfig().WithInterval(500 * time.Millisecond)
	cfg.Logger = quiet
	nodes := cluster(t, 3, cfg)
	for _, n := range nodes {
		if !waitFor(10*time.Second, func() bool { return settled(n) }) {
			t.Fatal("members never heard each other")
		}
	}
	for _, n := range nodes {
		if st := n.svc.Stats(); st.GossipSent != 0 || st.Suspects != 0 {
			t.Fatalf("settled cluster: %+v, want no gossip and no suspicion", st)
		}
	}
	c := nodes[2]
	inc := c.ep.Incarnation()
	// Heard within the Interval: not suspected on the teller's word. c
	// speaks to node 0 just before, so that a loaded machine's late
	// probes do not decide what "heard within the Interval" means here.
	if err := c.ep.Call(ctxFor(t, 5*time.Second), nodes[0].ep.Addr(), rfc.CallPing, nil, nil); err != nil {
		t.Fatal(err)
	}
	sendUpdates(t, nodes[1].ep, nodes[0].ep.Addr(), update{addr: c.ep.Addr(), node: 3, from: 2, state: StateSuspect, inc: inc})
	if st := stateOf(nodes[0].svc, c.ep.Addr()); st != StateAlive {
		t.Fatalf("member heard within the Interval is %v on another's word", st)
	}
	sendUpdates(t, nodes[1].ep, c.ep.Addr(), update{addr: c.ep.Addr(), node: 3, from: 2, state: StateSuspect, inc: inc})
	if got := c.ep.Incarnation(); got != inc+1 {
		t.Fatalf("incarnation %d after a suspicion at %d, want %d", got, inc, inc+1)
	}
	if !waitFor(10*time.Second, func() bool { return c.svc.Stats().GossipSent > 0 }) {
		t.Fatalf("refutation not gossiped: %+v", c.svc.Stats())
	}
	if !waitFor(10*time.Second, func() bool {
		info, _ := nodes[0].svc.Member(c.ep.Addr())
		return info.State == StateAlive && info.Incarnation > inc
	}) {
		t.Fatalf("refutation not heard: %+v", nodes[0].svc.Members())
	}
	for _, n := range nodes {
		if st := n.svc.Stats(); st.Deaths != 0 {
			t.Fatalf("%v declared a death: %+v", n.ep.Addr(), st)
		}
	}
}

// TestGossipFromNonMemberIgnored: a CallGossip from an address that is
// not a member is counted and changes nothing.
func TestGossipFromNonMemberIgnored(t *testing.T) {
	cfg := testConfig()
	member := newEndpoint(t, 2, nil)
	stranger := newEndpoint(t, 3, nil)
	x := startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{member.Addr()})
	b := putUpdate(nil, &update{addr: member.Addr(), node: 2, from: 3, state: StateDead, inc: ^uint32(0) - 1})
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.Uint64(uint64(stranger.Incarnation()))
	ps.Bytes(b)
	if err := stranger.Send(x.ep.Addr(), CallGossip, &ps); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return x.svc.Stats().NonMember > 0 }) {
		t.Fatalf("gossip from a non-member not counted: %+v", x.svc.Stats())
	}
	if st := x.svc.Stats(); st.UpdatesHeard != 0 || stateOf(x.svc, member.Addr()) != StateAlive {
		t.Fatalf("a non-member's gossip was applied: %+v", st)
	}
}

// TestJoinThroughSeed: a node that knows one member joins through it:
// it receives the seed's whole member list, and every member (the seed
// at once, the others through dissemination) lists it, alive. A node
// that does not accept joins answers EPERM.
func TestJoinThroughSeed(t *testing.T) {
	cfg := testConfig()
	cfg.AcceptJoins = true // with a cluster key (Config.AcceptJoins)
	key := func(c *rfc.Config) { c.Key = []byte("join-test-cluster-key") }
	var addrs []netip.AddrPort
	var eps []*rfc.Endpoint
	for i := 0; i < 3; i++ {
		eps = append(eps, newEndpoint(t, uint32(i+1), key))
		addrs = append(addrs, eps[i].Addr())
	}
	var nodes []*node
	for _, ep := range eps {
		nodes = append(nodes, startNode(t, ep, cfg, addrs))
	}
	j := startNode(t, newEndpoint(t, 9, key), cfg, nil)
	if err := j.svc.Join(ctxFor(t, 5*time.Second), nodes[1].ep.Addr()); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if got := len(j.svc.Members()); got != 3 {
		t.Fatalf("joined node lists %d members, want 3: %+v", got, j.svc.Members())
	}
	for _, n := range nodes {
		if !waitFor(10*time.Second, func() bool { return stateOf(n.svc, j.ep.Addr()) == StateAlive && len(n.svc.Members()) == 3 }) {
			t.Fatalf("%v does not list the joined node: %+v", n.ep.Addr(), n.svc.Members())
		}
	}
	if !waitFor(10*time.Second, func() bool { return settled(j) }) {
		t.Fatalf("joined node's view: %+v", j.svc.Members())
	}
	closed := startNode(t, newEndpoint(t, 10, nil), testConfig(), nil)
	k := startNode(t, newEndpoint(t, 11, nil), testConfig(), nil)
	if err := k.svc.Join(ctxFor(t, 5*time.Second), closed.ep.Addr()); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("Join through a node that accepts none: %v, want EPERM", err)
	}
}

// TestNewIncarnationHeardPassedOn: a member heard at a higher
// incarnation than before, from itself (its refutation or restart), has
// that incarnation disseminated by the hearer as an alive update; the
// first incarnation heard of a member is not news and is not.
func TestNewIncarnationHeardPassedOn(t *testing.T) {
	cfg := DefaultConfig().WithInterval(2 * time.Second)
	cfg.Logger = quiet
	peer := newEndpoint(t, 2, nil)
	x := startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{peer.Addr()})
	queued := func() (found bool, inc uint32) {
		x.svc.mu.Lock()
		defer x.svc.mu.Unlock()
		for _, u := range x.svc.mu.bcast {
			if u.addr == peer.Addr() && u.state == StateAlive {
				return true, u.inc
			}
		}
		return false, 0
	}
	sendUpdates(t, peer, x.ep.Addr())
	if found, _ := queued(); found {
		t.Fatal("the first incarnation heard of a member was disseminated")
	}
	next := peer.Incarnation() + 5
	peer.SetIncarnation(next)
	sendUpdates(t, peer, x.ep.Addr())
	if found, inc := queued(); !found || inc != next {
		t.Fatalf("new incarnation %d heard from the member: queued %v at %d, want an alive update at it", next, found, inc)
	}
}

// TestTakeUpdatesLeastSentFirst: a datagram carries at most
// piggybackMax updates, the least sent first and, among those sent as
// often, the newest first; an update sent its retransmit limit leaves
// the queue; a small room takes fewer.
func TestTakeUpdatesLeastSentFirst(t *testing.T) {
	s := &Service{cfg: DefaultConfig()}
	s.mu.members = map[netip.AddrPort]*member{}
	for i := 0; i < 100; i++ {
		s.mu.members[netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}), 1)] = &member{}
	}
	limit := s.retransmitLimitLocked()
	sends := []int{5, 0, 2, 0, limit - 1, 1, 0, 3, 4, 1, 2}
	for i, n := range sends {
		s.mu.bcast = append(s.mu.bcast, update{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), 1),
			state: StateAlive, inc: uint32(i), sends: n})
	}
	b := s.takeUpdatesLocked(nil, 1<<16)
	// Least sent first, newest first among equals: incarnations name
	// the queue positions.
	want := []uint32{6, 3, 1, 9, 5, 10, 2, 7}
	for k, w := range want {
		u, rest, ok := nextUpdate(b)
		if !ok || u.inc != w {
			t.Fatalf("update %d: %+v (ok %v), want the one at position %d", k, u, ok, w)
		}
		b = rest
	}
	if len(b) != 0 {
		t.Fatalf("more than %d updates in one datagram", len(want))
	}
	if len(s.mu.bcast) != len(sends) {
		t.Fatalf("%d updates left, want %d (none at the limit yet)", len(s.mu.bcast), len(sends))
	}
	// The one at limit-1 goes once taken again; a room for two takes two.
	for i := range s.mu.bcast {
		s.mu.bcast[i].sends = limit
	}
	s.mu.bcast[4].sends = limit - 1
	s.mu.bcast[8].sends = 0
	s.mu.bcast[0].sends = 0
	b = s.takeUpdatesLocked(nil, 2*updMax)
	u1, rest, _ := nextUpdate(b)
	u2, rest, _ := nextUpdate(rest)
	if len(rest) != 0 || u1.inc != 8 || u2.inc != 0 {
		t.Fatalf("took %d, %d (and %d bytes more), want 8 then 0", u1.inc, u2.inc, len(rest))
	}
	b = s.takeUpdatesLocked(nil, 1<<16)
	if len(s.mu.bcast) != 2 {
		t.Fatalf("%d updates left, want 2 (those at the limit gone)", len(s.mu.bcast))
	}
}

// TestSuspicionHeardEngineFresh: a suspicion of a member this node's
// engine has just heard from is not applied, even where the probe loop
// has not yet folded that datagram into the member (it steps an idle
// member only when the schedule picks it): the member is probed instead.
// A live member reached here must not be suspected on the word of
// members cut off from it.
func TestSuspicionHeardEngineFresh(t *testing.T) {
	cfg := DefaultConfig().WithInterval(2 * time.Second)
	cfg.Logger = quiet
	cfg.ReprobeInterval = time.Hour
	teller := newEndpoint(t, 2, nil)
	target := newEndpoint(t, 3, nil)
	other := newEndpoint(t, 4, nil)
	x := startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{teller.Addr(), target.Addr(), other.Addr()})
	sendUpdates(t, target, x.ep.Addr()) // a datagram from the target: the engine has heard it
	if info, ok := x.ep.Peer(target.Addr()); !ok || info.LastHeardNs == 0 {
		t.Fatalf("engine has not heard the target: %+v", info)
	}
	var b []byte
	b = putUpdate(b, &update{addr: target.Addr(), node: 3, from: 2, state: StateSuspect, inc: target.Incarnation()})
	s := x.svc
	s.mu.Lock()
	m, from := s.mu.members[target.Addr()], s.mu.members[teller.Addr()]
	if m == nil || from == nil || m.state != StateAlive {
		s.mu.Unlock()
		t.Fatalf("target %v, teller %v: want both members, the target alive", m, from)
	}
	m.heardNs = 0 // the probe loop has not stepped it since
	s.applyUpdatesLocked(from, b, s.ep.Now())
	st := m.state
	s.mu.Unlock()
	if st != StateAlive {
		t.Fatalf("target %v after a suspicion heard, want alive (the engine heard it just now)", st)
	}
}
