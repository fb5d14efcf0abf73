package route

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// restartCluster is c1 = {m0, m1} in a table that lists m0 active, with
// the members' roles as given, behind a router started on that table
// (the state a router finds when it starts after a crash); it returns
// the router, the members, the router's endpoint, a client endpoint and
// the members' endpoints.
func restartCluster(t *testing.T, active0, active1 bool) (*Router, [2]*Member, *rfc.Endpoint, *rfc.Endpoint, [2]*rfc.Endpoint) {
	t.Helper()
	table := NewMemMounts()
	var ms [2]*Member
	var eps [2]*rfc.Endpoint
	for i, on := range []bool{active0, active1} {
		ms[i], eps[i] = newTestMember(t, uint32(10+i), MemberConfig{Active: on})
	}
	mountC1(t, table, eps[0].Addr(), eps[1].Addr())
	r, rep := startRouter(t, table, testRouterConfig(t))
	return r, ms, rep, newEndpoint(t, 100, 0), eps
}

// A router that starts does not know the demotions an earlier run of it
// still owed: a member it had promoted while the fence of the member the
// table lists active was lost is active beside that one. The starting
// router demotes every member but the one it makes active, until they
// acknowledge, so the sub-cluster does not keep two active members.
func TestRestartedRouterDemotesOthers(t *testing.T) {
	r, ms, _, _, _ := restartCluster(t, true, true)
	if !rfctest.WaitFor(10*time.Second, func() bool { return !ms[1].Active() }) {
		t.Fatalf("members active %v %v after the router started, want only the one it routes to", ms[0].Active(), ms[1].Active())
	}
	if !ms[0].Active() {
		t.Fatalf("the member the router routes to was demoted")
	}
	if res, err := r.Resolve("/c1/k"); err != nil || res.Active != res.Members[0] {
		t.Fatalf("resolve: %+v %v", res, err)
	}
}

// A sub-cluster whose members are all standby (each restarted as standby
// after the router replaced it, or demoted as the router started) is
// given an active member: the first routed call that every member
// refuses with ENOTACTIVE leads the router to activate the member it
// believes active, and the call is served there.
func TestAllStandbyActivated(t *testing.T) {
	_, ms, rep, client, _ := restartCluster(t, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Call(ctx, rep.Addr(), CallNSPut, putKV(), nil); err != nil {
		t.Fatalf("put with every member standby: %v", err)
	}
	if !ms[0].Active() || ms[1].Active() || ms[0].Writes() != 1 {
		t.Fatalf("members active %v %v, writes %d %d; want the first active with the write",
			ms[0].Active(), ms[1].Active(), ms[0].Writes(), ms[1].Writes())
	}
}

// The router promotes the standby while its fence of the old active
// member is not acknowledged, and is closed (a crash) before it re-sends
// the fence. A router started on the same table believes the table's
// active member, the old one, which never heard the fence: it demotes
// the member the first router promoted, so one member is active, the
// one it routes to.
func TestRouterRestartAfterLostFence(t *testing.T) {
	var refuse, active atomic.Bool
	oc := failoverLostFence(t, &refuse, &active)
	oc.router.Close()
	if !oc.standby.Active() || !active.Load() {
		t.Fatalf("before the restart: standby active %v, old active %v; want both", oc.standby.Active(), active.Load())
	}
	refuse.Store(false)
	r2, err := New(newEndpoint(t, 2, 16), testRouterConfig(t), oc.table)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	res, err := r2.Resolve("/c1/k")
	if err != nil || res.Active != oc.old.Addr() {
		t.Fatalf("restarted router routes to %+v %v, want the table's active member", res, err)
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { return !oc.standby.Active() }) || !active.Load() {
		t.Fatalf("after the restart: promoted member active %v, old active %v; want only the old one", oc.standby.Active(), active.Load())
	}
}

// A sub-cluster whose live member is standby and whose other member is
// dead has no active member either: the router activates the live one
// (the dead one is owed a demotion) and the call is served there.
func TestStandbyWithDeadPeerActivated(t *testing.T) {
	_, ms, rep, client, meps := restartCluster(t, false, true)
	meps[1].Close()
	rep.MarkDead(meps[1].Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Call(ctx, rep.Addr(), CallNSPut, putKV(), nil); err != nil {
		t.Fatalf("put with the live member standby and the other dead: %v", err)
	}
	if !ms[0].Active() || ms[0].Writes() != 1 {
		t.Fatalf("live member active %v writes %d; want it active with the write", ms[0].Active(), ms[0].Writes())
	}
}

// TestClusterAddedDuringFirstDemotionsOwed: a sub-cluster the table adds
// while New sends its first round of demotions is owed its demotions
// too. New took
// the owed list, sent the round, then emptied the failover goroutine's
// wake-up signal: the signal of a sub-cluster added during the round was
// thrown away with the list it announced still untaken, and its members
// were never demoted (a member left active beside the one the router
// routes to).
func TestClusterAddedDuringFirstDemotionsOwed(t *testing.T) {
	ctx := context.Background()
	table := NewMemMounts()
	// c1: a live active member and a silent standby that holds New's
	// round for ActivateTimeout.
	_, lep := newTestMember(t, 10, MemberConfig{Active: true})
	// c2, added when the silent member hears its demotion: x active, y
	// still active from an earlier run.
	x, xep := newTestMember(t, 11, MemberConfig{Active: true})
	y, yep := newTestMember(t, 12, MemberConfig{Active: true})
	added := make(chan error, 1)
	silent := silentMember(t, func(bool) bool {
		added <- AddCluster(ctx, table, DefaultTablePrefix, "c2", []MemberSpec{{xep.Addr(), RoleActive}, {yep.Addr(), RoleStandby}})
		return false
	})
	mountC1(t, table, lep.Addr(), silent)
	cfg := testRouterConfig(t)
	cfg.ActivateTimeout = 500 * time.Millisecond
	startRouter(t, table, cfg)
	select {
	case err := <-added:
		if err != nil {
			t.Fatalf("adding c2: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent member heard no demotion")
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return !y.Active() }) {
		t.Fatal("c2's standby, added during New's round of demotions, was never demoted")
	}
	if !x.Active() {
		t.Fatal("c2's active member demoted")
	}
}

// TestMemberAddedToClusterDemoted: a member the table adds to a
// sub-cluster the router already knows is owed a demotion, as every
// member but the active one is when the router learns a sub-cluster:
// it may be active (made so for a sub-cluster since removed, or by an
// earlier run of a router). Before, only a sub-cluster new to the router
// owed demotions, and a member added to a known one as standby stayed
// active beside the one the router routes to.
func TestMemberAddedToClusterDemoted(t *testing.T) {
	r, ms, _, _, eps := restartCluster(t, true, false)
	z, zep := newTestMember(t, 12, MemberConfig{Active: true})
	if err := AddCluster(context.Background(), r.src.(*MemMounts), DefaultTablePrefix, "c1", []MemberSpec{
		{eps[0].Addr(), RoleActive}, {eps[1].Addr(), RoleStandby}, {zep.Addr(), RoleStandby}}); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { return !z.Active() }) {
		t.Fatal("the member added to c1 as standby is still active")
	}
	if !ms[0].Active() {
		t.Fatal("the member the router routes to was demoted")
	}
}
