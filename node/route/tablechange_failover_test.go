package route

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

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
		r := sc.router
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
		time.Sleep(10 * time.Second) // rounds of owed demotions
		synctest.Wait()
		var active []int
		for i, m := range ms {
			if m.Active() {
				active = append(active, i)
			}
		}
		if len(active) > 1 {
			t.Errorf("members %v active at once; the router routes to %v", active, r.resolveActive(t))
		}
		if _, err := sc.put(t, "/c1/k", []byte("v")); err != nil {
			t.Errorf("put after the failover: %v", err)
		}
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
		r := sc.router
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
		time.Sleep(10 * time.Second) // rounds of owed demotions
		synctest.Wait()
		if ms[1].Active() && ms[2].Active() {
			t.Errorf("members 1 and 2 active at once; the router routes to %v", r.resolveActive(t))
		}
		if _, err := sc.put(t, "/c1/k", []byte("v")); err != nil {
			t.Errorf("put after the failover: %v", err)
		}
	})
}

// putActiveCut cuts the router off the active member m0 (node 10) and
// starts a put to /c1 that goes to it; the put's error arrives on the
// channel returned.
func (sc *simCluster) putActiveCut(t *testing.T) <-chan error {
	sc.net.Cut(sc.rep.Addr(), simAddr(10))
	return sc.goPut(t, "/c1/k")
}
