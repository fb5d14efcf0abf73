package heartbeat

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestNonMemberClaimsIgnored: what a non-member says about a node, in a
// heartbeat or through an indirect probe it asks a member to run, never
// moves the node's incarnation and reports nothing.
func TestNonMemberClaimsIgnored(t *testing.T) {
	a, b := pair(t)
	cli := newEndpoint(t, 77, nil)
	before := b.ep.Incarnation()
	for i := 0; i < 200; i++ {
		sendHeartbeat(t, cli, b.ep.Addr(), view{state: StateDead, inc: maxInc - 1})
	}
	if got := b.ep.Incarnation(); got != before {
		t.Fatalf("incarnation %d after non-member claims, was %d", got, before)
	}
	// A non-member that writes a member's node id in its headers is not
	// that member.
	spoof := newEndpoint(t, a.ep.NodeID(), nil)
	sendHeartbeat(t, spoof, b.ep.Addr(), view{state: StateDead, inc: maxInc - 1})
	if got := b.ep.Incarnation(); got != before {
		t.Fatalf("incarnation %d after a claim under a member's node id, was %d", got, before)
	}
	// An indirect probe asked by a non-member is not run.
	var ps wire.Params
	ps.Reset(make([]byte, 128))
	ps.Uint64(1)
	ps.Uint64(uint64(b.ep.NodeID()))
	ps.String(b.ep.Addr().String())
	ps.Uint64(uint64(StateDead))
	ps.Uint64(uint64(maxInc - 1))
	if err := cli.Send(a.ep.Addr(), CallProbeRequest, &ps); err != nil {
		t.Fatalf("send probe-request: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return a.svc.Stats().NonMember >= 1 }) {
		t.Fatalf("probe-request not refused: %+v", a.svc.Stats())
	}
	if got := b.ep.Incarnation(); got != before {
		t.Fatalf("incarnation %d after a relayed claim, was %d", got, before)
	}
	if n := b.log.count(EventDeclaredDeadBy, netip.AddrPort{}) + b.log.count(EventSuspectedBy, netip.AddrPort{}); n != 0 {
		t.Fatalf("%d events from non-member claims", n)
	}
	if st := b.svc.Stats(); st.NonMember < 201 {
		t.Fatalf("non-member heartbeats counted %d, want 201", st.NonMember)
	}
}

// TestDeclaredDeadLogLimited: a member that keeps declaring this node dead
// at new incarnations gets an event each time, but not a log line each
// time.
func TestDeclaredDeadLogLimited(t *testing.T) {
	var logs rfctest.LogBuffer
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cli := newEndpoint(t, 77, nil)
	ep := newEndpoint(t, 2, nil)
	startNode(t, cli, testConfig(), []netip.AddrPort{ep.Addr()})
	b := startNode(t, ep, cfg, []netip.AddrPort{cli.Addr()})
	const n = 200
	for i := 0; i < n; i++ {
		sendHeartbeat(t, cli, ep.Addr(), view{state: StateDead, inc: ep.Incarnation()})
	}
	if !waitFor(5*time.Second, func() bool { return b.log.count(EventDeclaredDeadBy, cli.Addr()) == n }) {
		t.Fatalf("%d events, want %d", b.log.count(EventDeclaredDeadBy, cli.Addr()), n)
	}
	if lines := logs.Lines("this node was declared dead"); lines < 1 || lines > n/10 {
		t.Fatalf("%d log lines for %d declarations", lines, n)
	}
}

// TestDeadAtTopRejoins: a member declared dead at the top incarnation
// cannot raise it; it rejoins once it answers a probe that told it of its
// death.
func TestDeadAtTopRejoins(t *testing.T) {
	a, b := heardPair(t)
	victim := b.ep.Addr()
	b.ep.SetIncarnation(maxInc)
	// a declares b dead at the top, as if b had stopped for a while.
	s := a.svc
	s.mu.Lock()
	m := s.mu.members[victim]
	m.inc = maxInc
	dead := s.toDeadLocked(m, s.ep.Now())
	s.mu.Unlock()
	a.ep.MarkDead(victim)
	s.finishDeath(m, dead)
	if !waitFor(10*time.Second, func() bool { return stateOf(a.svc, victim) == StateAlive }) {
		t.Fatalf("member dead at the top incarnation stays %v", stateOf(a.svc, victim))
	}
	if b.log.count(EventDeclaredDeadBy, a.ep.Addr()) == 0 {
		t.Fatal("b never heard of its death")
	}
}
