package heartbeat

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestUpdateCodec: updates round-trip for IPv4 and IPv6 addresses, and
// malformed entries are refused, never read past.
func TestUpdateCodec(t *testing.T) {
	in := []update{
		{addr: netip.MustParseAddrPort("127.0.0.9:4000"), node: 7, state: StateDead, inc: 42},
		{addr: netip.MustParseAddrPort("[::1]:65535"), node: 0, state: StateAlive, inc: ^uint32(0)},
		{addr: netip.MustParseAddrPort("[::ffff:127.0.0.2]:1"), node: 1, state: StateSuspect, inc: 1},
	}
	var b []byte
	for i := range in {
		b = putUpdate(b, &in[i])
	}
	for i, want := range in {
		u, rest, ok := nextUpdate(b)
		if !ok {
			t.Fatalf("entry %d: not decoded", i)
		}
		want.addr = netip.AddrPortFrom(want.addr.Addr().Unmap(), want.addr.Port())
		if u.addr != want.addr || u.node != want.node || u.state != want.state || u.inc != want.inc {
			t.Fatalf("entry %d: %+v, want %+v", i, u, want)
		}
		b = rest
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left", len(b))
	}
	good := putUpdate(nil, &in[0])
	bad := [][]byte{
		good[:updHead-1],
		good[:len(good)-1],
		append([]byte{byte(stateLimit)}, good[1:]...),
		append(append([]byte{}, good[:updOffAddrLen]...), append([]byte{5}, good[updOffAddr:]...)...),
	}
	for i, e := range bad {
		if _, _, ok := nextUpdate(e); ok {
			t.Errorf("malformed %d accepted", i)
		}
	}
}

// sendUpdates makes ep (a member of the receiver) send one heartbeat
// to dst carrying the given updates.
func sendUpdates(t *testing.T, ep *rfc.Endpoint, dst netip.AddrPort, us ...update) {
	t.Helper()
	sendHeartbeat(t, ep, dst, view{}, us...)
}

// TestDeathHeardMarksDead: a death disseminated by a member makes this
// node suspect the member at once and declare it dead when its own
// suspect round fails: EventSuspect then EventDead, and a call parked on
// the dead member fails ENODEAD. The same update from a
// non-member changes nothing.
func TestDeathHeardMarksDead(t *testing.T) {
	// A long interval: this node's own probes would take seconds to
	// find the victim suspect, so the suspicion seen here is the one heard.
	x, teller, victim := startTold(t, 2*time.Second)
	stranger := newEndpoint(t, 3, nil)
	p, err := x.ep.Go(ctxFor(t, 30*time.Second), victim, wire.CallUserBase, nil)
	if err != nil {
		t.Fatalf("Go: %v", err)
	}
	defer p.Release()

	dead := update{addr: victim, node: 4, state: StateDead, inc: 0}
	sendUpdates(t, stranger, x.ep.Addr(), dead)
	if st := x.svc.Stats(); st.NonMember == 0 || st.UpdatesHeard != 0 || stateOf(x.svc, victim) == StateDead {
		t.Fatalf("a non-member's update was applied: %+v, victim %v", st, stateOf(x.svc, victim))
	}
	sendUpdates(t, teller, x.ep.Addr(), dead)
	if !waitFor(5*time.Second, func() bool { return x.log.count(EventDead, victim) == 1 }) {
		t.Fatalf("victim %v, events %+v", stateOf(x.svc, victim), x.log.evs)
	}
	if n := x.log.count(EventSuspect, victim); n != 1 {
		t.Fatalf("%d suspicions before the death, want 1", n)
	}
	if err := p.Wait(); wire.AsErrno(err) != wire.ENODEAD {
		t.Fatalf("parked call: %v, want ENODEAD", err)
	}
	// An alive update above the incarnation it died at does not revive
	// it on the teller's word: only its answer to the check it makes
	// would (TestAttackForgedRevival).
	sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, state: StateAlive, inc: 1})
	if st := stateOf(x.svc, victim); st != StateDead || x.log.count(EventAlive, victim) != 0 {
		t.Fatalf("victim %v after an alive update, events %+v", st, x.log.evs)
	}
}

// TestDeathHeardAboutSelfRefuted: told by a member that it is dead at its
// own incarnation, a node raises its incarnation and disseminates the
// new one in its next heartbeats.
func TestDeathHeardAboutSelfRefuted(t *testing.T) {
	cfg := testConfig()
	teller := newEndpoint(t, 2, nil)
	x := startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{teller.Addr()})
	inc := x.ep.Incarnation()
	sendUpdates(t, teller, x.ep.Addr(), update{addr: x.ep.Addr(), node: 1, state: StateDead, inc: inc})
	if got := x.ep.Incarnation(); got != inc+1 {
		t.Fatalf("incarnation %d, want %d", got, inc+1)
	}
	if !waitFor(5*time.Second, func() bool { return x.svc.Stats().UpdatesSent > 0 }) {
		t.Fatalf("refutation not disseminated: %+v", x.svc.Stats())
	}
}

// TestDeathHearsayOfHeardMember: a death heard about a member this node
// heard from within the last Interval is not applied; the member stays
// alive.
func TestDeathHearsayOfHeardMember(t *testing.T) {
	cfg := configAt(time.Second)
	teller := newEndpoint(t, 2, nil)
	alive := newEndpoint(t, 3, nil)
	x := startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{teller.Addr(), alive.Addr()})
	sendUpdates(t, alive, x.ep.Addr()) // heard now
	sendUpdates(t, teller, x.ep.Addr(), update{addr: alive.Addr(), node: 3, state: StateDead, inc: alive.Incarnation()})
	if st := stateOf(x.svc, alive.Addr()); st != StateAlive || x.log.count(EventDead, alive.Addr()) != 0 {
		t.Fatalf("member heard just now declared dead on hearsay: %v", st)
	}
}

// TestProbesPerIntervalBounded: in a cluster of 12 a member probes at
// most ProbesPerInterval members per Interval (plus slack for the
// schedule's edges), not every member it has not heard from.
func TestProbesPerIntervalBounded(t *testing.T) {
	cfg := testConfig()
	nodes := cluster(t, 12, cfg)
	s := nodes[0].svc
	count := func() uint64 { st := s.Stats(); return st.Probes + st.ProbesSkipped }
	if !waitFor(10*time.Second, func() bool { return count() > 0 }) {
		t.Fatal("no probe")
	}
	t0, c0 := nodes[0].ep.Now(), count()
	span := 10 * int64(cfg.Interval)
	if !waitFor(time.Minute, func() bool { return nodes[0].ep.Now()-t0 >= span }) {
		t.Fatal("engine clock did not advance")
	}
	c1, t1 := count(), nodes[0].ep.Now()
	intervals := (t1-t0)/int64(cfg.Interval) + 2
	if limit := uint64(intervals) * uint64(cfg.ProbesPerInterval); c1-c0 > limit {
		t.Fatalf("%d probes in %d intervals, limit %d", c1-c0, intervals, limit)
	}
}

// TestDeathHearsayOfLiveMember: a death heard about a member this node
// has not heard from yet (a teller that was cut off or stalled says so)
// does not make the member dead here: it becomes suspect, this node
// probes it, and it answers, so it is alive again and no EventDead is
// queued.
func TestDeathHearsayOfLiveMember(t *testing.T) {
	// A long interval: the update lands before this node's first probe.
	cfg := configAt(5 * time.Second)
	cfg.ReprobeInterval = time.Hour
	teller := newEndpoint(t, 2, nil)
	live := startNode(t, newEndpoint(t, 3, nil), cfg, nil)
	x := startNode(t, newEndpoint(t, 1, nil), cfg, []netip.AddrPort{teller.Addr(), live.ep.Addr()})
	sendUpdates(t, teller, x.ep.Addr(), update{addr: live.ep.Addr(), node: 3, state: StateDead, inc: live.ep.Incarnation()})
	if !waitFor(20*time.Second, func() bool {
		return x.log.count(EventSuspect, live.ep.Addr()) == 1 && stateOf(x.svc, live.ep.Addr()) == StateAlive
	}) {
		t.Fatalf("live member %v after a death heard on hearsay, events %+v", stateOf(x.svc, live.ep.Addr()), x.log.evs)
	}
	if n := x.log.count(EventDead, live.ep.Addr()); n != 0 {
		t.Fatalf("live member declared dead %d times on hearsay", n)
	}
}
