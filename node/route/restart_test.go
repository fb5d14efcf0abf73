package route

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// restartCluster is c1 = {m0, m1} in a table that lists m0 active, with
// the members' roles as given, behind a router started on that table:
// the state a router finds when it starts after a crash.
func restartCluster(t *testing.T, active0, active1 bool) (*Router, [2]*Member, *rfc.Endpoint, *rfc.Endpoint) {
	t.Helper()
	table := NewMemMounts()
	var ms [2]*Member
	var eps [2]*rfc.Endpoint
	for i, on := range []bool{active0, active1} {
		ms[i] = NewMember(MemberConfig{Active: on})
		eps[i] = newEndpoint(t, uint32(10+i), 0)
		if err := ms[i].Register(eps[i]); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := AddCluster(ctx, table, DefaultTablePrefix, "c1", []MemberSpec{{eps[0].Addr(), RoleActive}, {eps[1].Addr(), RoleStandby}}); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, table, DefaultTablePrefix, "/c1", "c1"); err != nil {
		t.Fatal(err)
	}
	rep := newEndpoint(t, 1, 16)
	r, err := New(rep, testRouterConfig(t), table)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, ms, rep, newEndpoint(t, 100, 0)
}

// A router that starts does not know the demotions an earlier run of it
// still owed: a member it had promoted while the fence of the member the
// table lists active was lost is active beside that one. The starting
// router demotes every member but the one it makes active, until they
// acknowledge, so the sub-cluster does not keep two active members.
func TestRestartedRouterDemotesOthers(t *testing.T) {
	r, ms, _, _ := restartCluster(t, true, true)
	if !waitFor(10*time.Second, func() bool { return !ms[1].Active() }) {
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
	_, ms, rep, client := restartCluster(t, false, false)
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.String("/c1/k")
	ps.Bytes([]byte("v"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Call(ctx, rep.Addr(), CallNSPut, &ps, nil); err != nil {
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
	refuse.Store(true)
	active.Store(true)
	oc := newOutcomeCluster(t, func(old *rfc.Endpoint) {
		if err := old.Register(CallSetRole, "route-set-role", wire.Schema{wire.TypeBool}, rfc.Idempotent,
			func(req *rfc.Request, reply *wire.Params) wire.Errno {
				if refuse.Load() {
					return wire.EBUSY // the fence is not acknowledged
				}
				reply.Bool(active.Swap(req.Param(0).Bool()))
				return wire.OK
			}); err != nil {
			t.Fatal(err)
		}
	})
	oc.rep.MarkDead(oc.old.Addr())
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.String("/c1/k")
	ps.Bytes([]byte("v"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := oc.client.Call(ctx, oc.rep.Addr(), CallNSPut, &ps, nil); err != nil {
		t.Fatalf("put after the failover: %v", err)
	}
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
	if !waitFor(10*time.Second, func() bool { return !oc.standby.Active() }) || !active.Load() {
		t.Fatalf("after the restart: promoted member active %v, old active %v; want only the old one", oc.standby.Active(), active.Load())
	}
}
