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
	sc := &simCluster{net: simnet.New(1, simnet.Faults{Delay: simnet.Dist{Base: 200 * time.Microsecond}}, nil)}
	sc.table = NewMemMounts()
	t.Cleanup(sc.net.Close)
	open := func(node int) *rfc.Endpoint {
		cfg := rfc.DefaultConfig()
		cfg.NodeID = uint32(node)
		cfg.Logger = quiet
		ep, err := rfc.OpenTransport(cfg, sc.net.Attach(simAddr(node)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	for i := range sc.members {
		sc.members[i] = NewMember(MemberConfig{Active: i == 0})
		sc.meps[i] = open(10 + i)
		if err := sc.members[i].Register(sc.meps[i]); err != nil {
			t.Fatal(err)
		}
		if err := sc.meps[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	mountC1(t, sc.table, sc.meps[0].Addr(), sc.meps[1].Addr())
	sc.rep = open(1)
	if err := sc.rep.Start(); err != nil {
		t.Fatal(err)
	}
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
	sc.client = open(100)
	if err := sc.client.Start(); err != nil {
		t.Fatal(err)
	}
	return sc
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
		act, stby := sc.meps[0].Addr(), sc.meps[1].Addr()
		// The active member stops hearing the router; the router's
		// requests to the standby take 3 s.
		sc.net.Cut(sc.rep.Addr(), act)
		sc.net.SetFaults(sc.rep.Addr(), stby, simnet.Faults{Delay: simnet.Dist{Base: 3 * time.Second}})
		// The put's attempt times out, the ping goes unanswered, the
		// fence is lost and the promotion not answered in time: no
		// failover, the put ends ETIMEDOUT.
		if _, err := sc.put(t, "/c1/k", []byte("v")); err == nil {
			t.Fatal("put succeeded with the active member cut off")
		}
		// The links recover; the delayed promotion is still on its way.
		sc.net.Heal(sc.rep.Addr(), act)
		sc.net.SetFaults(sc.rep.Addr(), stby, simnet.Faults{Delay: simnet.Dist{Base: 200 * time.Microsecond}})
		// Virtual time: past the delayed promotion's arrival and several
		// rounds of owed demotions.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if sc.members[1].Active() {
			t.Errorf("standby %v active after a delayed promotion; the router routes to %v", stby, sc.router.resolveActive(t))
		}
		if !sc.members[0].Active() {
			t.Errorf("active member %v demoted", act)
		}
		if _, err := sc.put(t, "/c1/k", []byte("v")); err != nil {
			t.Errorf("put after the links recovered: %v", err)
		}
	})
}

// resolveActive is the member the router routes /c1 to.
func (r *Router) resolveActive(t *testing.T) netip.AddrPort {
	res, err := r.Resolve("/c1/k")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return res.Active
}
