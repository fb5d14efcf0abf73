package route

import (
	"context"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// setRoleParams is the parameters of a CallSetRole request: the role and
// the role epoch (0: an operator's request).
func setRoleParams(active bool, epoch uint64) *wire.Params {
	ps := new(wire.Params)
	ps.Reset(make([]byte, setRoleSize))
	ps.Bool(active)
	ps.Uint64(epoch)
	return ps
}

// callSetRole calls CallSetRole(active, epoch) from cli on the member at
// dst and returns the answer's errno.
func callSetRole(cli *rfc.Endpoint, dst netip.AddrPort, active bool, epoch uint64) wire.Errno {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return wire.AsErrno(cli.Call(ctx, dst, CallSetRole, setRoleParams(active, epoch), nil))
}

// TestPromotionBeforeRestartRefused: a copy of a set-role(true) that a
// member obeyed before it restarted (a copy the network delayed, or one
// captured and replayed within the age bound: the call is idempotent, so
// neither the duplicate cache nor the restart rule stops it) reaches the
// restarted member, which came back as standby. It must stay standby:
// the router may have made another member active since, and does not
// know it has to demote this one again.
func TestPromotionBeforeRestartRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSimNet(t)
		sc.startMember(t, 0, false)
		codec, _ := wire.NewCodec(0, nil)
		ps := setRoleParams(true, uint64(time.Now().UnixNano()))
		h := wire.Header{Flags: wire.FlagRequest, CallNo: CallSetRole, Src: 1, CallID: 1 << 20, Incarnation: 9,
			Budget: 200_000, Stamp: uint32(time.Now().UnixMilli())}
		dg := make([]byte, wire.DefaultMaxDatagram)
		n, e := codec.EncodeParams(dg, &h, ps)
		if e != wire.OK {
			t.Fatal(e)
		}
		router := sc.net.Attach(simAddr(1))
		defer router.Close()
		router.Send(dg[:n], sc.meps[0].Addr())
		time.Sleep(100 * time.Millisecond)
		if !sc.members[0].Active() {
			t.Fatal("the promotion was not obeyed")
		}

		// The member crashes and restarts as standby, as it must.
		time.Sleep(time.Second)
		sc.meps[0].Close()
		sc.startMember(t, 0, false)
		time.Sleep(time.Second)
		router.Send(dg[:n], sc.meps[0].Addr())
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if sc.members[0].Active() {
			t.Fatal("a set-role(true) sent before the member restarted made the restarted member active")
		}
	})
}

// A member obeys CallSetRole in epoch order: a request below the highest
// epoch it has obeyed is refused ECONFLICT and changes nothing; the same
// epoch again (a retransmission) is obeyed; epoch 0 (an operator's) is
// obeyed whatever came before and does not move the epoch. The epochs
// are counted from the wall clock after the member was made, as a
// router's are (a member refuses the epochs of before its start,
// TestPromotionBeforeRestartRefused).
func TestSetRoleEpochOrder(t *testing.T) {
	m, mep := newTestMember(t, 10, MemberConfig{})
	base := uint64(time.Now().UnixNano())
	client := newEndpoint(t, 100, 0)
	for i, st := range []struct {
		active bool
		epoch  uint64
		want   wire.Errno
		after  bool // the member's role after the request
	}{
		{true, 5, wire.OK, true},
		{false, 7, wire.OK, false},
		{true, 5, wire.ECONFLICT, false}, // delayed past epoch 7
		{true, 6, wire.ECONFLICT, false},
		{false, 7, wire.OK, false}, // a retransmission of epoch 7
		{true, 0, wire.OK, true},   // an operator's
		{false, 6, wire.ECONFLICT, true},
		{false, 8, wire.OK, false},
	} {
		epoch := uint64(0)
		if st.epoch != 0 {
			epoch = base + st.epoch
		}
		if e := callSetRole(client, mep.Addr(), st.active, epoch); e != st.want || m.Active() != st.after {
			t.Fatalf("step %d set-role(%v, epoch %d): %v active %v, want %v active %v", i, st.active, st.epoch, e, m.Active(), st.want, st.after)
		}
	}
}

// TestSetRoleFarFutureEpochRefused: a member refuses (EINVAL) a set-role
// whose epoch is further ahead of its clock than the engine's age bound,
// which no router could have sent: nodes' clocks agree within it, and a
// router's epoch is its clock. Before, one set-role with epoch 2^64-1
// was obeyed and every later set-role from the router (fence, promotion)
// was refused ECONFLICT until the member restarted: its sub-cluster
// could no longer fail over.
func TestSetRoleFarFutureEpochRefused(t *testing.T) {
	m, ep := newTestMember(t, 2, DefaultMemberConfig())
	cli := newEndpoint(t, 1, 0)
	ahead := uint64(ep.Config().MaxAge + time.Minute)
	for _, epoch := range []uint64{math.MaxUint64, uint64(time.Now().UnixNano()) + ahead} {
		if e := callSetRole(cli, ep.Addr(), true, epoch); e != wire.EINVAL {
			t.Errorf("set-role(true) at epoch %d: %v, want EINVAL", epoch, e)
		}
		if m.Active() {
			t.Errorf("set-role(true) at epoch %d obeyed", epoch)
			m.SetActive(false)
		}
	}
	// A router's request, at its clock, is still obeyed.
	if e := callSetRole(cli, ep.Addr(), true, uint64(time.Now().UnixNano())); e != wire.OK || !m.Active() {
		t.Fatalf("set-role(true) at the clock: %v, active %v", e, m.Active())
	}
}

// TestSharedMemberRoles: a member listed in two sub-clusters, active in
// one (a) and standby in the other (b), keeps serving a: the demotion
// the router owes b's standbys does not take it out of a. A member has
// one role; the router demoted it as it started, and its first call for
// a was refused ENOTACTIVE and activated it again. The demotion is held
// until a no longer believes it active.
func TestSharedMemberRoles(t *testing.T) {
	var ms [3]*Member
	var eps [3]*rfc.Endpoint
	for i := range ms {
		ms[i], eps[i] = newTestMember(t, uint32(10+i), MemberConfig{Active: i != 1})
	}
	x, y, z := eps[0].Addr(), eps[1].Addr(), eps[2].Addr()
	table := NewMemMounts()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ms   []MemberSpec
	}{
		{"a", []MemberSpec{{x, RoleActive}, {y, RoleStandby}}},
		{"b", []MemberSpec{{z, RoleActive}, {x, RoleStandby}}},
	} {
		if err := AddCluster(ctx, table, DefaultTablePrefix, c.name, c.ms); err != nil {
			t.Fatal(err)
		}
		if err := AddMount(ctx, table, DefaultTablePrefix, "/"+c.name, c.name); err != nil {
			t.Fatal(err)
		}
	}
	tc := &testCluster{table: table}
	tc.router, tc.rep = startRouter(t, table, testRouterConfig(t))
	tc.client = newEndpoint(t, 100, 0)
	if !rfctest.WaitFor(10*time.Second, func() bool { return !ms[1].Active() }) {
		t.Fatal("a's standby not demoted")
	}
	if !ms[0].Active() || !ms[2].Active() {
		t.Fatalf("members active x %v z %v after the router started, want both", ms[0].Active(), ms[2].Active())
	}
	for i := range 20 {
		for _, p := range []string{"/a/k", "/b/k"} {
			if _, err := tc.put(t, p, []byte("v")); err != nil {
				t.Fatalf("put %d %s: %v", i, p, err)
			}
		}
	}
	if ms[0].Writes() != 20 || ms[1].Writes() != 0 || ms[2].Writes() != 20 {
		t.Fatalf("writes x %d y %d z %d, want 20 0 20", ms[0].Writes(), ms[1].Writes(), ms[2].Writes())
	}
	if res, err := tc.router.Resolve("/a/k"); err != nil || res.Active != x {
		t.Fatalf("a resolves to %v (%v), want x %v", res.Active, err, x)
	}
	// Once a no longer lists it, x is demoted as b's standby.
	if err := AddCluster(ctx, table, DefaultTablePrefix, "a", []MemberSpec{{y, RoleActive}}); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { return !ms[0].Active() }) {
		t.Fatal("x still active after a dropped it")
	}
}

// TestUnmountedClusterHoldsNoDemotion: a sub-cluster that no mount names
// (here "ghost", listing a's standby y alone, so the router takes y for
// its active member) routes no call, and so needs no member active. A
// demotion owed to y as a's standby is not held for it. Before, the
// router held it as long as ghost was in the table: y, made active by an
// earlier run, stayed active beside a's active member x, and one table
// entry that nothing routes to kept two members of a active forever.
func TestUnmountedClusterHoldsNoDemotion(t *testing.T) {
	var ms [2]*Member
	var eps [2]*rfc.Endpoint
	for i := range ms {
		ms[i], eps[i] = newTestMember(t, uint32(10+i), MemberConfig{Active: true})
	}
	x, y := eps[0].Addr(), eps[1].Addr()
	table := NewMemMounts()
	ctx := context.Background()
	if err := AddCluster(ctx, table, DefaultTablePrefix, "a", []MemberSpec{{x, RoleActive}, {y, RoleStandby}}); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, table, DefaultTablePrefix, "/a", "a"); err != nil {
		t.Fatal(err)
	}
	if err := AddCluster(ctx, table, DefaultTablePrefix, "ghost", []MemberSpec{{y, RoleStandby}}); err != nil {
		t.Fatal(err)
	}
	startRouter(t, table, testRouterConfig(t))
	if !rfctest.WaitFor(10*time.Second, func() bool { return !ms[1].Active() }) {
		t.Fatal("a's standby y still active: its demotion held for a sub-cluster no mount names")
	}
	if !ms[0].Active() {
		t.Fatal("a's active member x demoted")
	}
}

// TestSharedMemberZoneSpellings: a link-local member listed in two
// sub-clusters, once with its zone as the interface's name and once as
// its index, is one member to the router, held in the form the engine
// names a sender (rfc.PeerAddr): the demotion owed to it as b's standby
// is held while a believes it active, and one sub-cluster listing it
// under both is malformed on this router. The table keeps each value as
// written: an index is the writing machine's own.
func TestSharedMemberZoneSpellings(t *testing.T) {
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	byName := mustAddr("[fe80::1%lo]:7000")
	byIndex := netip.AddrPortFrom(byName.Addr().WithZone(strconv.Itoa(ifi.Index)), byName.Port())
	_, zep := newTestMember(t, 10, MemberConfig{Active: true})
	table := NewMemMounts()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ms   []MemberSpec
	}{
		{"a", []MemberSpec{{byName, RoleActive}}},
		{"b", []MemberSpec{{zep.Addr(), RoleActive}, {byIndex, RoleStandby}}},
		{"c", []MemberSpec{{byName, RoleActive}, {byIndex, RoleStandby}}},
	} {
		if err := AddCluster(ctx, table, DefaultTablePrefix, c.name, c.ms); err != nil {
			t.Fatal(err)
		}
		if err := AddMount(ctx, table, DefaultTablePrefix, "/"+c.name, c.name); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := startRouter(t, table, testRouterConfig(t))
	ra, err := r.Resolve("/a/k")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := r.Resolve("/b/k")
	if err != nil {
		t.Fatal(err)
	}
	if ra.Active != rb.Members[1] || ra.Active != rfc.PeerAddr(byName) {
		t.Fatalf("a's active %v, b's standby %v: want both %v", ra.Active, rb.Members[1], rfc.PeerAddr(byName))
	}
	if !r.table.Load().activeElsewhere(rb.Members[1], "b") {
		t.Fatalf("b's standby %v not active elsewhere: a's active is %v", rb.Members[1], ra.Active)
	}
	// One value listing it under both spellings lists it twice here.
	if rc, err := r.Resolve("/c/k"); err != wire.ENOENT {
		t.Fatalf("c, listing %v and %v, resolves to %v (%v), want ENOENT", byName, byIndex, rc, err)
	}
	// The table holds the values as written.
	kvs, err := table.List(ctx, ClusterKey(DefaultTablePrefix, "a"))
	if err != nil || len(kvs) != 1 || !strings.Contains(string(kvs[0].Value), "%lo]") {
		t.Fatalf("a's value %v (%v), want the zone as written", kvs, err)
	}
}
