package route

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
	"testing/synctest"
)

// A client's tight deadline cuts the forwarding attempt short; the
// timeout that follows is no evidence against the healthy active member:
// no promotion, one active member, and the next call goes to it.
func TestTightDeadlineNoFailover(t *testing.T) {
	tc := newTestCluster(t, nil)
	margin := DefaultReplyMargin
	const calls = 40
	for i := 0; i < calls; i++ {
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.String("/c1/tight")
		ps.Bytes([]byte("v"))
		d := margin + time.Duration(10+10*i)*time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_ = tc.client.Call(ctx, tc.rep.Addr(), CallNSPut, &ps, nil)
		cancel()
	}
	// A call without a tight deadline goes through after them; no
	// outcome of the tight calls may lead to a failover, now or later.
	if _, err := tc.put(t, "/c1/after", []byte("v")); err != nil {
		t.Fatalf("put after the tight calls: %v", err)
	}
	if c := tc.router.Counters(); c[0].Failovers != 0 {
		t.Fatalf("failovers %d, want 0", c[0].Failovers)
	}
	if !tc.members[0].Active() || tc.members[1].Active() {
		t.Fatalf("roles: member0 active %v, member1 active %v", tc.members[0].Active(), tc.members[1].Active())
	}
	if res, _ := tc.router.Resolve("/c1/x"); res.Active != tc.meps[0].Addr() {
		t.Fatalf("router believes %v active", res.Active)
	}
}

// A promotion fences the member it replaces: a member the engine holds
// dead but that is alive after all is demoted before the standby takes
// over, so the sub-cluster never has two active members.
func TestFailoverFencesOldActive(t *testing.T) {
	tc := newTestCluster(t, nil)
	a0, a1 := tc.meps[0].Addr(), tc.meps[1].Addr()
	tc.rep.MarkDead(a0) // a false verdict: member 0 is alive
	if _, err := tc.put(t, "/c1/k", []byte("v")); err != nil {
		t.Fatalf("put: %v", err)
	}
	if tc.members[0].Active() || !tc.members[1].Active() {
		t.Fatalf("roles: member0 active %v, member1 active %v", tc.members[0].Active(), tc.members[1].Active())
	}
	if res, _ := tc.router.Resolve("/c1/k"); res.Active != a1 {
		t.Fatalf("router believes %v active", res.Active)
	}
	// Member 0 answers ENOTACTIVE to a direct call now.
	var ps wire.Params
	ps.Reset(make([]byte, 64))
	ps.String("/c1/k")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := tc.client.Call(ctx, a0, CallNSGet, &ps, nil); err != wire.ENOTACTIVE {
		t.Fatalf("direct get on the fenced member: %v, want ENOTACTIVE", err)
	}
}

// A late success from the member that was active when a call started
// does not make it the router's active member again once the router has
// learned another (here: the old one said ENOTACTIVE to a later call and
// the standby answered it).
func TestLateAnswerKeepsView(t *testing.T) {
	table := NewMemMounts()
	slow := newEndpoint(t, 10, 0)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	if err := slow.Register(CallNSPut+RoutedOffset, "ns-put-fwd", ForwardedSchema(schemaNSPut), 0,
		func(req *rfc.Request, reply *wire.Params) wire.Errno {
			if req.Param(ContextParams).Str() != "/c1/slow" {
				return wire.ENOTACTIVE
			}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			reply.Uint64(1)
			return wire.OK
		}); err != nil {
		t.Fatal(err)
	}
	_, sep := newTestMember(t, 11, MemberConfig{Active: true})
	mountC1(t, table, slow.Addr(), sep.Addr())
	cfg := testRouterConfig(t)
	cfg.ForwardTimeout = 10 * time.Second
	r, rep := startRouter(t, table, cfg)
	client := newEndpoint(t, 100, 0)
	put := func(path string) (*rfc.Pending, error) {
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.String(path)
		ps.Bytes([]byte("v"))
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		return client.Go(cctx, rep.Addr(), CallNSPut, &ps)
	}
	slowCall, err := put("/c1/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer slowCall.Release()
	fast, err := put("/c1/fast")
	if err != nil {
		t.Fatal(err)
	}
	if err := fast.Wait(); err != nil {
		t.Fatalf("put through the standby: %v", err)
	}
	fast.Release()
	if res, _ := r.Resolve("/c1/x"); res.Active != sep.Addr() {
		t.Fatalf("after ENOTACTIVE the router believes %v active", res.Active)
	}
	free()
	if err := slowCall.Wait(); err != nil {
		t.Fatalf("slow put: %v", err)
	}
	if res, _ := r.Resolve("/c1/x"); res.Active != sep.Addr() {
		t.Fatalf("a late answer made %v active again", res.Active)
	}
}

// A burst of calls that fail on a dead active member while no standby
// can take over costs a failover decision or two, not one per call: each
// call ends ENODEAD well before its deadline (one decision at a time is
// a fence and a promotion attempt, ActivateTimeout each).
func TestFailoverBurstOneDecision(t *testing.T) {
	tc := newTestCluster(t, nil)
	a0 := tc.meps[0].Addr()
	tc.meps[0].Close()
	tc.meps[1].Close()
	tc.rep.MarkDead(a0)
	const calls = 50
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	pend := goPuts(t, ctx, tc.client, tc.rep.Addr(), calls)
	got := map[wire.Errno]int{}
	for _, p := range pend {
		got[wire.AsErrno(p.Wait())]++
	}
	if got[wire.ENODEAD] != calls {
		t.Fatalf("outcomes %v, want %d ENODEAD", got, calls)
	}
	if c := tc.router.Counters(); c[0].Failovers != 0 {
		t.Fatalf("failovers %d with no live standby", c[0].Failovers)
	}
}

// Many calls that fail at once on an active member that does not answer
// wait for the one failover goroutine in its bounded queue: the router
// starts no goroutine per failing call, so the process's goroutine count
// stays near where it was while the failover decision (a ping and two
// set-role calls to members that do not answer) runs.
func TestFailingCallsNoGoroutineEach(t *testing.T) {
	const calls = 100
	tc := newTestCluster(t, func(c *Config) {
		c.ForwardTimeout = 100 * time.Millisecond
		c.ProbeTimeout = 200 * time.Millisecond
		c.ActivateTimeout = 200 * time.Millisecond
	})
	tc.meps[0].Close()
	tc.meps[1].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := runtime.NumGoroutine()
	pend := goPuts(t, ctx, tc.client, tc.rep.Addr(), calls)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range pend {
			p.Wait()
		}
	}()
	peak := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
		}
		peak = max(peak, runtime.NumGoroutine())
	}
	if peak-base > calls/4 {
		t.Fatalf("goroutines rose from %d to %d while %d calls failed", base, peak, calls)
	}
}

// TestSilentMembersDoNotStallFailover: members that never answer
// their owed demotion (listed but down) do not hold up the failover of
// another sub-cluster. The failover goroutine sent a round of demotions
// one after another, each waited up to ActivateTimeout, so a round cost
// ActivateTimeout per silent member and every failover queued meanwhile
// waited for it: a call whose active member had died ended ETIMEDOUT at
// its client's deadline instead of reaching the standby (and New waited
// as long for the first round).
func TestSilentMembersDoNotStallFailover(t *testing.T) {
	const silentN = 21 // three sub-clusters of one live member and 7 silent ones
	table := NewMemMounts()
	ctx := context.Background()
	// Silent members read their requests and never answer; every first
	// transmission of a set-role request is reported on sent.
	sent := make(chan struct{}, 1024)
	var silent []netip.AddrPort
	for i := 0; i < silentN; i++ {
		silent = append(silent, silentMember(t, func(retrans bool) bool {
			if !retrans {
				select {
				case sent <- struct{}{}:
				default:
				}
			}
			return true
		}))
	}
	_, lep := newTestMember(t, 10, MemberConfig{Active: true})
	for c := 0; c < 3; c++ {
		specs := []MemberSpec{{lep.Addr(), RoleActive}}
		for _, a := range silent[c*silentN/3 : (c+1)*silentN/3] {
			specs = append(specs, MemberSpec{a, RoleStandby})
		}
		name := fmt.Sprintf("down%d", c)
		if err := AddCluster(ctx, table, DefaultTablePrefix, name, specs); err != nil {
			t.Fatal(err)
		}
	}
	// cx: A active, B and C standby; A dies below.
	var specs []MemberSpec
	mA := newEndpoint(t, 11, 0)
	for i := 0; i < 3; i++ {
		m := NewMember(MemberConfig{Active: i == 0})
		ep := mA
		if i > 0 {
			ep = newEndpoint(t, uint32(11+i), 0)
		}
		if err := m.Register(ep); err != nil {
			t.Fatal(err)
		}
		role := RoleStandby
		if i == 0 {
			role = RoleActive
		}
		specs = append(specs, MemberSpec{ep.Addr(), role})
	}
	if err := AddCluster(ctx, table, DefaultTablePrefix, "cx", specs); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, table, DefaultTablePrefix, "/cx", "cx"); err != nil {
		t.Fatal(err)
	}
	cfg := testRouterConfig(t)
	cfg.ForwardTimeout = 400 * time.Millisecond
	cfg.ActivateTimeout = 200 * time.Millisecond
	cfg.ProbeTimeout = 100 * time.Millisecond
	r, rep := startRouter(t, table, cfg)
	tc := &testCluster{router: r, rep: rep, client: newEndpoint(t, 100, 0)}
	if _, err := tc.get(t, "/cx/k"); err != wire.ENOENT {
		t.Fatalf("get before the death: %v", err)
	}
	// Wait for the failover goroutine's next round of demotions: a first
	// transmission after New returned (New's own round ended before).
	for len(sent) > 0 {
		<-sent
	}
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("no round of demotions")
	}
	mA.Close()
	// One round of the silent members one after another takes 4.2 s;
	// the call may take the router's bound for cx, 1.9 s.
	var ps wire.Params
	ps.Reset(make([]byte, 1300))
	ps.String("/cx/k")
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := tc.client.Call(cctx, rep.Addr(), CallNSGet, &ps, nil); err != wire.ENOENT {
		t.Fatalf("get after the active member's death, during a round of demotions: %v (want the standby's ENOENT)", err)
	}
}

// TestFailoverDuringTableChange: a failover decision that is under way
// when the table rewrites the sub-cluster's member list (here reordered)
// is not lost to the new list. The router cut off the active member m0;
// a put's attempt timed out, the ping went unanswered, and while the
// fence of m0 was waiting the table listed the members in another order.
// The decision, made on the list it started from, promoted m1; the new
// list had been built from the old belief (m0 active), so the next put
// failed over again and promoted the member after m0 in the new order,
// m2: two active members, neither of which the router would demote.
func TestFailoverDuringTableChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc, ms, a, cfg := newThreeMemberCluster(t)
		ctx := context.Background()
		done := sc.putActiveCut(t)
		// The attempt ends at ForwardTimeout, the ping ProbeTimeout later;
		// then the fence waits up to ActivateTimeout. Rewrite the list
		// during the fence.
		time.Sleep(cfg.ForwardTimeout + cfg.ProbeTimeout + cfg.ActivateTimeout/2)
		reordered := []MemberSpec{a[0], a[2], a[1]}
		if err := AddCluster(ctx, sc.table, DefaultTablePrefix, "c1", reordered); err != nil {
			t.Fatal(err)
		}
		<-done
		// Calls after the change go where the router now believes.
		for i := 0; i < 3; i++ {
			sc.put(t, "/c1/k", []byte("v"))
		}
		// m0 hears again: it owes m0 the fence it never acknowledged.
		sc.net.Heal(sc.rep.Addr(), simAddr(10))
		sc.settledOneActive(t, ms, 0, 1, 2)
	})
}

// newThreeMemberCluster is a simCluster whose sub-cluster c1 (mounted at
// /c1) has three members, nodes 10 (active), 11 and 12 (standby); it
// returns the members, their specs in table order and the router's
// configuration.
func newThreeMemberCluster(t *testing.T) (*simCluster, [3]*Member, [3]MemberSpec, Config) {
	t.Helper()
	sc := newSimNet(t)
	var ms [3]*Member
	for i := range ms {
		ms[i] = NewMember(MemberConfig{Active: i == 0})
		if err := ms[i].Register(sc.open(t, 10+i)); err != nil {
			t.Fatal(err)
		}
	}
	a := [3]MemberSpec{{simAddr(10), RoleActive}, {simAddr(11), RoleStandby}, {simAddr(12), RoleStandby}}
	ctx := context.Background()
	if err := AddCluster(ctx, sc.table, DefaultTablePrefix, "c1", a[:]); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, sc.table, DefaultTablePrefix, "/c1", "c1"); err != nil {
		t.Fatal(err)
	}
	cfg := sc.startRouter(t, nil)
	return sc, ms, a, cfg
}

// TestStaleCallFailsOverOnNewTable: a call whose attempt was sent before
// a table change and failed after it is decided on the sub-cluster as the
// table now lists it. The router sent a put to the active member m0, cut
// off; the table then dropped m0 and listed m2 (active) and m1; the next
// put found both standby and the router activated m2, owing m1 a
// demotion. When the first put's attempt timed out, its failover was
// decided on the list it started from, where m0 was still active: m0
// missed its ping and m1, next in that list, was promoted, beside m2.
func TestStaleCallFailsOverOnNewTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc, ms, a, _ := newThreeMemberCluster(t)
		ctx := context.Background()
		done := sc.putActiveCut(t)
		time.Sleep(10 * time.Millisecond)
		if err := AddCluster(ctx, sc.table, DefaultTablePrefix, "c1", []MemberSpec{{a[2].Addr, RoleActive}, a[1]}); err != nil {
			t.Fatal(err)
		}
		if _, err := sc.put(t, "/c1/k", []byte("v")); err != nil {
			t.Fatalf("put on the new list: %v", err)
		}
		<-done
		// m0, cut off and no longer listed, is left out: nothing
		// demotes it.
		sc.settledOneActive(t, ms, 1, 2)
	})
}

// settledOneActive moves virtual time past rounds of owed demotions and
// checks that at most one of the members ms[i], i in check, is active and
// that a put to /c1 goes through.
func (sc *simCluster) settledOneActive(t *testing.T, ms [3]*Member, check ...int) {
	t.Helper()
	time.Sleep(10 * time.Second)
	synctest.Wait()
	var active []int
	for _, i := range check {
		if ms[i].Active() {
			active = append(active, i)
		}
	}
	if len(active) > 1 {
		t.Errorf("members %v active at once; the router routes to %v", active, sc.router.resolveActive(t))
	}
	if _, err := sc.put(t, "/c1/k", []byte("v")); err != nil {
		t.Errorf("put after the failover: %v", err)
	}
}

// putActiveCut cuts the router off the active member m0 (node 10) and
// starts a put to /c1 that goes to it; the put's error arrives on the
// channel returned.
func (sc *simCluster) putActiveCut(t *testing.T) <-chan error {
	sc.net.Cut(sc.rep.Addr(), simAddr(10))
	return sc.goPut(t, "/c1/k")
}
