package heartbeat

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestAttackClaimsStarveRounds: a member holding the key tells every
// live member, twice per Tick, that it is suspect at its own incarnation.
// Each claim is refuted (and raises the health to 1 at most), and each
// refutation is gossiped at the next tick, retried at every tick while
// the budget is short. Each live member must still declare a crashed
// member dead within twice DetectBoundAt (others' claims stretch the
// timers at most twice, Security): the gossip, paid one datagram at a
// time as the credit comes, must not keep the budget below what an
// indirect round needs at once. Before, no live member had declared the
// crashed member dead after ten times that (24.2 s, 8 runs of 8). The
// same claims about the other live members, each checked by a probe,
// are run too.
func TestAttackClaimsStarveRounds(t *testing.T) {
	for _, kind := range []string{"self", "others"} {
		claimsStarve(t, kind)
	}
}

// claimsStarve runs TestAttackClaimsStarveRounds with claims about each
// live member itself (kind "self") or, carried in the updates, about
// every other live member (kind "others": each checked by a probe).
func claimsStarve(t *testing.T, kind string) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := DefaultConfig()
		cfg.Logger = quiet
		const n = 6 // teller and crashed member included: not a small cluster
		teller := s.Listen(100, nil)
		var eps []*rfc.Endpoint
		addrs := []netip.AddrPort{teller.Addr()}
		for i := range n - 1 {
			ep := s.Listen(uint32(i+1), nil)
			eps = append(eps, ep)
			addrs = append(addrs, ep.Addr())
		}
		var nodes []*node
		for _, ep := range eps {
			nodes = append(nodes, startNode(t, ep, cfg, addrs))
		}
		live, v := nodes[:len(nodes)-1], nodes[len(nodes)-1]
		var top atomic.Int64
		var ps wire.Params
		buf := make([]byte, 256)
		stop := attackEvery(cfg.Tick/2, func() {
			for _, x := range live {
				if kind == "self" {
					heartbeatParams(&ps, buf, teller.Incarnation(), view{state: StateSuspect, inc: x.ep.Incarnation()}, nil)
				} else {
					var upd []byte
					for _, y := range live {
						if y != x {
							u := update{addr: y.ep.Addr(), node: y.ep.NodeID(), from: 7, state: StateSuspect, inc: y.ep.Incarnation()}
							upd = putUpdate(upd, &u)
						}
					}
					heartbeatParams(&ps, buf, teller.Incarnation(), view{state: StateAlive, inc: x.ep.Incarnation()}, upd)
				}
				ctx, cancel := context.WithTimeout(context.Background(), cfg.Tick/8)
				_ = teller.Call(ctx, x.ep.Addr(), CallHeartbeat, &ps, nil)
				cancel()
				if h := int64(x.svc.Stats().Health); h > top.Load() {
					top.Store(h)
				}
			}
		})
		time.Sleep(20 * cfg.Interval) // virtual: the claims go on
		s.Net.Crash(v.ep.Addr())
		v.svc.Close()
		crashed := time.Now()
		bound := 2 * DetectBoundAt(cfg, n)
		ok := waitFor(10*bound, func() bool {
			for _, x := range live {
				if stateOf(x.svc, v.ep.Addr()) != StateDead {
					return false
				}
			}
			return true
		})
		took := time.Since(crashed)
		stop()
		var extra, deferred, refuted uint64
		for _, x := range live {
			st := x.svc.Stats()
			extra, deferred, refuted = extra+st.Extra, deferred+st.Deferred, refuted+st.Refutations
		}
		if !ok || took > bound {
			var states []State
			for _, x := range live {
				states = append(states, stateOf(x.svc, v.ep.Addr()))
			}
			t.Fatalf("claims about %s: crashed member dead at every live member after %v (all dead %v, states %v), want within %v (2 DetectBoundAt(%d)): health up to %d, %d refutations, budget paid %d, deferred %d",
				kind, took, ok, states, bound, n, top.Load(), refuted, extra, deferred)
		}
		t.Logf("claims about %s: detection %v (2 DetectBoundAt %v), health up to %d, %d refutations, budget paid %d, deferred %d",
			kind, took, bound, top.Load(), refuted, extra, deferred)
	})
}
