package route

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// simCluster is a testCluster (without audit) on a simulated network.
// Built and used inside a synctest bubble: time is virtual, so a test
// moves it on with time.Sleep and every timer fires in order.
type simCluster struct {
	testCluster
	net *simnet.Network
}

// simAddr is the simulated address of node i.
func simAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), 7000)
}

// newSimCluster builds a simCluster on a calm network (no loss, a fixed
// small delay); mod adjusts the router's configuration. Everything is
// closed when the test ends.
func newSimCluster(t *testing.T, mod func(*Config)) *simCluster {
	t.Helper()
	sc := newSimNet(t)
	for i := range sc.members {
		sc.startMember(t, i, i == 0)
	}
	mountC1(t, sc.table, sc.meps[0].Addr(), sc.meps[1].Addr())
	sc.startRouter(t, mod)
	return sc
}

// newSimNet is a simCluster with only its calm network (no loss, a fixed
// small delay) and an empty mount table, closed when the test ends.
func newSimNet(t *testing.T) *simCluster {
	t.Helper()
	sc := &simCluster{net: simnet.New(1, simnet.Faults{Delay: simnet.Dist{Base: 200 * time.Microsecond}}, nil)}
	sc.table = NewMemMounts()
	t.Cleanup(sc.net.Close)
	return sc
}

// startRouter starts the router (node 1, without audit; mod adjusts its
// configuration) on sc's table and the client (node 100), closed when the
// test ends; it returns the router's configuration.
func (sc *simCluster) startRouter(t *testing.T, mod func(*Config)) Config {
	t.Helper()
	sc.rep = sc.open(t, 1)
	cfg := DefaultConfig()
	cfg.AuditDir = ""
	cfg.Logger = quiet
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(sc.rep, cfg, sc.table)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	sc.router = r
	sc.client = sc.open(t, 100)
	return cfg
}

// goPut starts a put of "v" at path in its own goroutine; its error
// arrives on the channel returned.
func (sc *simCluster) goPut(t *testing.T, path string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := sc.put(t, path, []byte("v"))
		done <- err
	}()
	return done
}

// open starts an endpoint for node at simAddr(node) with a new
// incarnation (a first start, or a restart once the previous one is
// closed), closed when the test ends.
func (sc *simCluster) open(t *testing.T, node int) *rfc.Endpoint {
	t.Helper()
	cfg := rfc.DefaultConfig()
	cfg.NodeID = uint32(node)
	cfg.Logger = quiet
	ep, err := rfc.OpenTransport(cfg, sc.net.Attach(simAddr(node)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	if err := ep.Start(); err != nil {
		t.Fatal(err)
	}
	return ep
}

// startMember starts member i (node 10+i) in role active, as a new
// process: a restart once the previous one's endpoint is closed.
func (sc *simCluster) startMember(t *testing.T, i int, active bool) {
	t.Helper()
	m := NewMember(MemberConfig{Active: active})
	ep := sc.open(t, 10+i)
	if err := m.Register(ep); err != nil {
		t.Fatal(err)
	}
	sc.members[i], sc.meps[i] = m, ep
}

// TestStaleActivationRefused: a set-role(true) that the network delays
// past the router's later set-role(false) to the same member does not
// make that member active. The router's promotion of the standby got no
// answer in time (its request delayed), so it kept the active member and
// owed the standby a demotion; the demotion went out after the link
// recovered and was acknowledged, and then the delayed promotion arrived
// and was obeyed: the sub-cluster had two active members, one of which
// the router did not know of and never demoted again. A member now
// refuses a set-role older (by the router's role epoch) than the last one
// it obeyed.
func TestStaleActivationRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSimCluster(t, nil)
		sc.delayPromotion(t)
		sc.promotionRefused(t, "standby")
	})
}

// delayPromotion cuts the router off the active member (member 0) and
// delays its requests to the standby by 3 s, then makes a put: the put's
// attempt times out, the ping goes unanswered, the fence is lost and the
// promotion not answered in time, so there is no failover, the put ends
// ETIMEDOUT, and the router owes the standby a demotion while its
// promotion is still on its way.
func (sc *simCluster) delayPromotion(t *testing.T) {
	t.Helper()
	sc.net.Cut(sc.rep.Addr(), sc.meps[0].Addr())
	sc.net.SetFaults(sc.rep.Addr(), sc.meps[1].Addr(), simnet.Faults{Delay: simnet.Dist{Base: 3 * time.Second}})
	if _, err := sc.put(t, "/c1/k", []byte("v")); err == nil {
		t.Fatal("put succeeded with the active member cut off")
	}
}

// promotionRefused heals the links delayPromotion cut and delayed, moves
// virtual time past the delayed promotion's arrival and several rounds of
// owed demotions, and checks that member 1 (what names it in the error)
// stayed standby, member 0 active, and a put goes through.
func (sc *simCluster) promotionRefused(t *testing.T, what string) {
	t.Helper()
	act, stby := sc.meps[0].Addr(), sc.meps[1].Addr()
	sc.net.Heal(sc.rep.Addr(), act)
	sc.net.SetFaults(sc.rep.Addr(), stby, simnet.Faults{Delay: simnet.Dist{Base: 200 * time.Microsecond}})
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if sc.members[1].Active() {
		t.Errorf("%s %v active after a delayed promotion; the router routes to %v", what, stby, sc.router.resolveActive(t))
	}
	if !sc.members[0].Active() {
		t.Errorf("active member %v demoted", act)
	}
	if _, err := sc.put(t, "/c1/k", []byte("v")); err != nil {
		t.Errorf("put after the links recovered: %v", err)
	}
}

// resolveActive is the member the router routes /c1 to.
func (r *Router) resolveActive(t *testing.T) netip.AddrPort {
	res, err := r.Resolve("/c1/k")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return res.Active
}

// TestActivationForEarlierProcessRefused: a set-role(true) that the
// network delays until after its member restarted does not make the new
// process active. The router's promotion of the standby got no answer in
// time, so it owed the standby a demotion; the standby restarted (as
// standby, with no role epoch) and acknowledged the demotion, and then
// the delayed promotion, meant for the process before, arrived: it is
// below the epoch of the demotion the new process obeyed, and refused.
func TestActivationForEarlierProcessRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSimCluster(t, nil)
		sc.delayPromotion(t)
		// The standby restarts while the promotion is on its way.
		sc.meps[1].Close()
		sc.startMember(t, 1, false)
		sc.promotionRefused(t, "restarted standby")
	})
}
