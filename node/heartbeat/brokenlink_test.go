package heartbeat

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
)

// TestBrokenLinkLateRound: A and B cannot reach each other, both reach
// C. One indirect round of B's about A runs late (its request to C is
// held for an Interval, longer than RoundTimeout), so B suspects A on
// its own evidence while C, which hears A every Interval, neither adopts
// the suspicion nor passes it on, and B's own probes of A, which carry
// it, are lost on the cut. B keeps running indirect rounds of A while it
// suspects it: their requests carry the suspicion, C's probe tells A, A
// refutes, and C's ack that it reached A clears the suspicion at B. No
// member may declare A dead, and B's view of A must be alive again.
// (TestBrokenLinkIndirect, on real sockets at load, declared A dead in
// about 3 runs of 40 this way: B ran no round of A while it suspected
// it, and A never heard that it was suspected.)
func TestBrokenLinkLateRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, addrs := simNet(t, 1, nil, 3)
		a, b, c := addrs[0], addrs[1], addrs[2]
		cfg := DefaultConfig().WithInterval(100 * time.Millisecond)
		cfg.Logger = quiet
		nodes, stop := simCluster(t, net, cfg, []netip.AddrPort{a, b, c},
			[][]netip.AddrPort{{b, c}, {a, c}, {a, b}})
		defer stop()
		na, nb, nc := nodes[0], nodes[1], nodes[2]
		// Every member has heard every other (a helper finds the target
		// by node id).
		time.Sleep(5 * cfg.Interval)
		synctest.Wait()
		for _, n := range nodes {
			for _, m := range n.svc.Members() {
				if m.Node == 0 || m.State != StateAlive {
					t.Fatalf("%v before the cut: %+v", n.ep.Addr(), m)
				}
			}
		}
		net.Cut(a, b)
		net.Cut(b, a)
		// Hold B's datagrams to C while B sends its first indirect
		// request after the cut: that round's acks come after its end.
		slow := simnet.Faults{Delay: simnet.Dist{Base: cfg.Interval}}
		net.SetFaults(b, c, slow)
		sent := nb.svc.Stats().IndirectSent
		for i := 0; nb.svc.Stats().IndirectSent == sent; i++ {
			if i == int(10*cfg.Interval/time.Millisecond) {
				t.Fatal("B opened no indirect round across the cut")
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
		}
		net.SetFaults(b, c, calmLink)
		time.Sleep(10 * cfg.Interval)
		synctest.Wait()
		if nb.log.count(EventSuspect, a) == 0 {
			t.Errorf("B never suspected A: the late round did not run late")
		}
		for _, n := range nodes {
			if d := n.log.count(EventDead, a); d != 0 {
				t.Errorf("%v declared A dead %d times; A is reached through C", n.ep.Addr(), d)
			}
		}
		if st := stateOf(nb.svc, a); st != StateAlive {
			t.Errorf("B holds A %v 10 intervals on, want alive", st)
		}
		if nc.svc.Stats().Relayed == 0 {
			t.Errorf("C ran no indirect probe")
		}
		t.Logf("A %+v\nB %+v", na.svc.Stats(), nb.svc.Stats())
	})
}
