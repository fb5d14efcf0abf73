package heartbeat

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
)

// TestProbeSlotsSpread: the members' scheduled probes are spread over
// the probe slot, not sent by every member within a Tick of the slot's
// start. Sixteen members started at one instant (their probe loops tick
// together, as members sharing a process or a host do at worst); the
// probes they send are counted by where in the slot (Interval /
// ProbesPerInterval) they leave, in Tick-wide windows. No window may
// hold more than half of them. (Sixteen probe loops, and 256 in the
// scale benchmark, sent every probe of a slot in its first Tick: every
// slot began with a burst the process had to queue.)
func TestProbeSlotsSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 16
		tr := simnet.NewTrace(1 << 16)
		net := simnet.New(1, simnet.Faults{Delay: simnet.Dist{Base: time.Millisecond}}, tr)
		defer net.Close()
		cfg := DefaultConfig()
		cfg.Logger = quiet
		var addrs []netip.AddrPort
		for i := range n {
			addrs = append(addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 7100))
		}
		members := make([][]netip.AddrPort, n)
		for i := range members {
			members[i] = addrs
		}
		start := time.Now()
		_, stop := simCluster(t, net, cfg, addrs, members)
		defer stop()
		const warm, span = 5, 20 // Intervals
		time.Sleep(warm * cfg.Interval)
		from := time.Since(start)
		time.Sleep(span * cfg.Interval)
		synctest.Wait()

		unit := cfg.Interval / time.Duration(cfg.ProbesPerInterval)
		windows := make([]int, int(unit/cfg.Tick))
		req := "req call=" + strconv.FormatUint(uint64(CallHeartbeat), 16)
		total := 0
		for _, e := range tr.Events() {
			if e.Kind != "send" || e.At < from || !strings.HasPrefix(e.Info, req) || strings.Contains(e.Info, "retrans") {
				continue
			}
			off := time.Duration(start.Add(e.At).UnixNano() % int64(unit))
			windows[min(int(off/cfg.Tick), len(windows)-1)]++
			total++
		}
		if total < span*n*cfg.ProbesPerInterval/2 {
			t.Fatalf("%d probes in %d Intervals of %d members: the cluster did not run", total, span, n)
		}
		for i, c := range windows {
			if 2*c > total {
				t.Errorf("%d of %d probes left in window %d of the slot (%v each): %v", c, total, i, cfg.Tick, windows)
			}
		}
	})
}
