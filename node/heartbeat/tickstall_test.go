package heartbeat

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// stallConn is a simulated transport whose next send from the probe
// loop first sleeps for stall (virtual time): the probe loop stalled in
// the middle of a tick, as a process descheduled or paused there is.
type stallConn struct {
	rfc.Transport
	stall atomic.Int64  // ns; 0: none armed
	call  atomic.Uint32 // the call number whose request stalls (0: any)
	hit   atomic.Bool   // the armed stall happened
}

func (c *stallConn) Send(b []byte, dst netip.AddrPort) error {
	call := uint16(c.call.Load())
	if call != 0 && (len(b) < wire.OffCallNo+2 || binary.BigEndian.Uint16(b[wire.OffCallNo:]) != call) {
		return c.Transport.Send(b, dst)
	}
	if d := c.stall.Load(); d > 0 && inProbeLoop() && c.stall.CompareAndSwap(d, 0) {
		time.Sleep(time.Duration(d))
		c.hit.Store(true)
	}
	return c.Transport.Send(b, dst)
}

// inProbeLoop reports whether the caller runs on a probe loop.
func inProbeLoop() bool {
	buf := make([]byte, 8<<10)
	return bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("probeLoop"))
}

// TestStallInTickCounted: a stall of this process in the middle of a
// probe loop tick (here half an Interval inside a send) is a late tick:
// the next tick comes that much after the one before, and the local
// health rises, as for a stall between two ticks, whether the tick left
// work to step (a probe sent) or none (a gossip datagram sent while no
// probe was in flight). A tick that ran past its next point of the grid
// is followed by one at once, planned at that point. (Before, the next
// tick was planned from the end of the one that stalled, or at the next
// due event when nothing needed stepping: the time stalled was no
// lateness, and the health stayed 0.)
func TestStallInTickCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		call uint16 // the request whose send stalls
	}{{"probe", CallHeartbeat}, {"gossip", CallGossip}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { stallInTick(t, tc.call) })
		})
	}
}

func stallInTick(t *testing.T, call uint16) {
	net, addrs := simNet(t, 1, nil, 2)
	cfg := DefaultConfig()
	cfg.Logger = quiet
	a, b := addrs[0], addrs[1]
	var nodes []*node
	var conn *stallConn
	for i, pair := range [][2]netip.AddrPort{{a, b}, {b, a}} {
		rc := rfc.DefaultConfig()
		rc.NodeID = uint32(i + 1)
		rc.Logger = quiet
		var tr rfc.Transport = net.Attach(pair[0])
		if i == 0 {
			conn = &stallConn{Transport: tr}
			tr = conn
		}
		ep, err := rfc.OpenTransport(rc, tr)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := Start(ep, cfg, []netip.AddrPort{pair[1]})
		if err != nil {
			t.Fatal(err)
		}
		if err := ep.Start(); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &node{ep: ep, svc: svc, log: new(eventLog)})
	}
	defer func() {
		for _, n := range nodes {
			n.svc.Close()
			n.ep.Close()
		}
	}()
	s := nodes[0].svc
	time.Sleep(5 * cfg.Interval)
	synctest.Wait()
	if h := s.Stats().Health; h != 0 {
		t.Fatalf("health %d before the stall", h)
	}
	// Past Interval/4 + Tick (late with a fixed Tick too), short of
	// the gossip period (the next gossip is not due at once after it).
	stall := 2 * cfg.Interval / 5
	conn.call.Store(uint32(call))
	conn.stall.Store(int64(stall))
	if call == CallGossip {
		// An update to gossip, news to no one: B's own incarnation.
		info, _ := s.Member(b)
		s.mu.Lock()
		s.enqueueLocked(b, info.Node, StateAlive, info.Incarnation)
		s.mu.Unlock()
	}
	worst := 0
	for range 3 * int(cfg.Interval/cfg.Tick) {
		time.Sleep(cfg.Tick)
		synctest.Wait()
		worst = max(worst, s.Stats().Health)
	}
	if !conn.hit.Load() {
		t.Fatal("the probe loop sent no such request in 3 Intervals")
	}
	if worst == 0 {
		t.Errorf("a stall of %v inside a tick left the local health at 0", stall)
	}
	if st := s.Stats(); st.Suspects != 0 || st.Deaths != 0 {
		t.Errorf("a stall of this node made it suspect its peer: %+v", st)
	}
}

// TestLagWindowsAfterSleeps: the lag (how late this node's own ticks
// came) is held over the last one to two Intervals, however far apart
// the ticks are: the probe loop sleeps up to an Interval between ticks
// when idle, and a lag window that began at the tick after such a sleep
// held a late tick up to a sleep longer. Driven as the loop drives the
// gauge: one tick 2 Ticks late (lag, not a stall), then ticks planned
// 0.9 Interval apart. (Before, the lag still counted 1.8 Intervals after
// the late tick, in the third Interval, as a loop ticking every Tick
// would not have held it.)
func TestLagWindowsAfterSleeps(t *testing.T) {
	s, pr, _ := stallProber(t)
	iv, tick := int64(s.cfg.Interval), int64(s.cfg.Tick)
	t0 := s.ep.Now()
	pr.grid, pr.lastNs, pr.lastWant, pr.onTime, pr.lagAt = t0, t0, t0, t0, t0
	pr.wantAt = t0 + tick
	at := t0 + 3*tick // planned at t0+Tick: 2 Ticks late
	pr.gauge(at)
	if pr.late != 0 || pr.lag() != 2*tick {
		t.Fatalf("a tick 2 Ticks late: late %v, lag %v (want 0 and %v)", pr.late, pr.lag(), 2*tick)
	}
	for range 2 {
		pr.wantAt = at + 9*iv/10
		at = pr.wantAt
		pr.gauge(at)
		if pr.late != 0 {
			t.Fatalf("a planned sleep counted as a stall at %v", time.Duration(at-t0))
		}
		if lag := pr.lag(); at-t0 < 2*iv && lag != 2*tick {
			t.Errorf("%v after the start, in the second Interval: lag %v, want %v", time.Duration(at-t0), time.Duration(lag), time.Duration(2*tick))
		} else if at-t0 >= 2*iv && lag != 0 {
			t.Errorf("%v after the start, past two Intervals of the late tick's window: lag %v, want 0", time.Duration(at-t0), time.Duration(lag))
		}
	}
}
