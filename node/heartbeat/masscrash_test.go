package heartbeat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
)

// crashDetect starts n members on the simulated network (loss as given),
// lets them settle, crashes the last k at once and returns, for the
// slowest pair, how long a live member took to declare a crashed one
// dead (0 and a description if some pair never did within limit), and
// the live members' largest local health seen.
func crashDetect(t *testing.T, s *rfctest.Sim, n, k int, loss float64, limit time.Duration) (time.Duration, string) {
	t.Helper()
	cfg := testConfig()
	eps := make([]*rfc.Endpoint, n)
	addrs := make([]netip.AddrPort, n)
	for i := range eps {
		eps[i] = s.Listen(uint32(i+1), nil)
		addrs[i] = eps[i].Addr()
	}
	nodes := make([]*node, n)
	for i := range eps {
		nodes[i] = startNode(t, eps[i], cfg, addrs)
	}
	s.Net.SetDefault(simnet.Faults{Loss: loss})
	time.Sleep(2 * DetectBoundAt(cfg, n)) // virtual: every member heard
	live, gone := nodes[:n-k], nodes[n-k:]
	for _, g := range gone {
		s.Net.Crash(g.ep.Addr())
		g.svc.Close()
	}
	crashed := time.Now()
	worst, miss := time.Duration(0), ""
	left := map[[2]int]bool{}
	for i := range live {
		for j := range gone {
			left[[2]int{i, j}] = true
		}
	}
	for time.Since(crashed) <= limit && len(left) > 0 {
		time.Sleep(cfg.Tick / 2)
		for p := range left {
			if stateOf(live[p[0]].svc, gone[p[1]].ep.Addr()) == StateDead {
				worst = max(worst, time.Since(crashed))
				delete(left, p)
			}
		}
	}
	if len(left) > 0 {
		miss = fmt.Sprintf("%d of %d pairs undetected after %v", len(left), len(live)*len(gone), limit)
	}
	return worst, miss
}

// TestMassCrashWithinBound: every live member declares every crashed
// member dead within DetectBoundAt for the cluster, when many members
// stop at once, every live member healthy, with and without 5% loss,
// from a cluster of three to one of 48.
func TestMassCrashWithinBound(t *testing.T) {
	for _, c := range []struct {
		n, k int
		loss float64
	}{{3, 1, 0.05}, {4, 1, 0.05}, {8, 1, 0.05}, {16, 8, 0}, {24, 12, 0}, {24, 12, 0.05}, {48, 24, 0.05}} {
		rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
			cfg := testConfig()
			bound := DetectBoundAt(cfg, c.n)
			worst, miss := crashDetect(t, s, c.n, c.k, c.loss, 4*bound)
			if miss != "" || worst > bound {
				t.Errorf("N=%d, %d crashed, loss %.2f: slowest detection %v (%.2f Intervals), DetectBoundAt %v (%.2f); %s",
					c.n, c.k, c.loss, worst, float64(worst)/float64(cfg.Interval), bound, float64(bound)/float64(cfg.Interval), miss)
			} else {
				t.Logf("N=%d, %d crashed, loss %.2f: slowest detection %.2f Intervals, bound %.2f",
					c.n, c.k, c.loss, float64(worst)/float64(cfg.Interval), float64(bound)/float64(cfg.Interval))
			}
		})
	}
}
