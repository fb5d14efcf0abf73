package heartbeat

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// stallProber builds a service and its probe loop's state on a real
// endpoint without starting the loop, so that a test can drive ticks at
// chosen engine times, and adds one member at an address nothing
// answers on.
func stallProber(t *testing.T) (*Service, *prober, *member) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Logger = quiet
	ep := newEndpoint(t, 1, nil)
	s := &Service{ep: ep, cfg: cfg, log: quiet, self: observerID(ep), done: make(chan struct{})}
	s.events = make(chan Event, 64)
	s.relayQ = make(chan relayJob, 4)
	s.mu.members = map[netip.AddrPort]*member{}
	pr := &prober{s: s, buf: make([]byte, ep.Config().MaxDatagram), upd: make([]byte, 0, piggybackBuf),
		rnd: rand.New(rand.NewPCG(1, 2))}
	pr.ctx.Context = context.Background()
	pr.credit = pr.bank() // as probeLoop starts it
	t.Cleanup(pr.shutdown)
	gone := newEndpoint(t, 2, nil)
	addr := gone.Addr()
	gone.Close()
	if err := s.AddMember(addr); err != nil {
		t.Fatal(err)
	}
	return s, pr, s.mu.members[addr]
}

// addTeller adds a running endpoint (node 3) as a member of s and
// returns that member: the one the updates a test applies come from.
func addTeller(t *testing.T, s *Service) *member {
	t.Helper()
	teller := newEndpoint(t, 3, nil)
	if err := s.AddMember(teller.Addr()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.members[teller.Addr()]
}

// ticksUntil runs on-time ticks from 'from' until m is in state want or
// limit passes, and returns the engine time it got there (0: never).
func ticksUntil(s *Service, pr *prober, m *member, from, limit int64, want State) int64 {
	for now := from + int64(s.cfg.Tick); now <= limit; now += int64(s.cfg.Tick) {
		pr.gauge(now)
		pr.step(m, now)
		if stateOf(s, m.addr) == want {
			return now
		}
	}
	return 0
}

// TestStalledTickShiftsRound: a tick that comes late (this process was
// stalled) does not end an indirect round that was open: the stall is
// this node's fault, and the round's end moves past it. The round still
// ends, a round's length after the stall.
func TestStalledTickShiftsRound(t *testing.T) {
	s, pr, m := stallProber(t)
	iv := int64(s.cfg.Interval)
	t0 := s.ep.Now()
	s.mu.Lock()
	m.heardNs = t0 - 2*iv
	m.ackSeq, m.roundStart, m.roundEnd = 1, t0, t0+int64(s.cfg.RoundTimeout)
	s.mu.Unlock()
	pr.lastNs = t0
	stalled := t0 + 10*iv
	pr.gauge(stalled)
	if pr.late == 0 {
		t.Fatal("a tick 10 intervals late not seen as late")
	}
	pr.step(m, stalled)
	if st := stateOf(s, m.addr); st != StateAlive {
		t.Fatalf("member %v after this node stalled past its round's end, want alive", st)
	}
	end := m.roundEnd
	if end <= stalled {
		t.Fatalf("round end %v not moved past the stall", time.Duration(end-stalled))
	}
	at := ticksUntil(s, pr, m, stalled, end+2*int64(s.cfg.Tick), StateSuspect)
	if at == 0 || at < end {
		t.Fatalf("member %v after its moved round ended with no sign of life (at %v), want suspect", stateOf(s, m.addr), time.Duration(at-end))
	}
}

// TestStalledTickShiftsSuspicion: a suspicion timer that expires while
// this node is stalled does not declare the member dead at the late
// tick; it expires its timeout after the stall.
func TestStalledTickShiftsSuspicion(t *testing.T) {
	s, pr, m := stallProber(t)
	iv := int64(s.cfg.Interval)
	t0 := s.ep.Now()
	s.mu.Lock()
	s.toSuspectLocked(m, t0)
	m.susp = suspicion{start: t0, conf: maxConfirm}
	s.mu.Unlock()
	pr.lastNs = t0
	stalled := t0 + 10*iv
	pr.gauge(stalled)
	pr.step(m, stalled)
	if st := stateOf(s, m.addr); st != StateSuspect {
		t.Fatalf("member %v after this node stalled past its suspicion timeout, want suspect", st)
	}
	to := int64(suspicionTimeout(&s.cfg, 2, maxConfirm))
	at := ticksUntil(s, pr, m, stalled, stalled+(1+healthMax)*to+int64(s.cfg.Tick), StateDead)
	if at == 0 || at-stalled < to {
		t.Fatalf("member %v (dead %v after the stall), want dead no sooner than %v after it",
			stateOf(s, m.addr), time.Duration(at-stalled), time.Duration(to))
	}
}

// TestScheduledProbeOfSuspectConfirms: a suspect member stays in the
// probe schedule; when this node's probe of it fails, that is one
// confirmation from this node (the timer shrinks), passed on as a
// suspicion with this node as observer.
func TestScheduledProbeOfSuspectConfirms(t *testing.T) {
	s, pr, m := stallProber(t)
	// Two more members, pinned (the schedule skips them), so that the
	// cluster is past the size probed whole every Interval.
	for i := uint32(3); i <= 4; i++ {
		ep := newEndpoint(t, i, nil)
		if err := s.AddMember(ep.Addr()); err != nil {
			t.Fatal(err)
		}
		s.mu.members[ep.Addr()].pinned = true
	}
	t0 := s.ep.Now()
	s.mu.Lock()
	s.toSuspectLocked(m, t0)
	m.susp = suspicion{start: t0}
	m.susp.confirm(7)
	m.susp.conf = 0 // observer 7 began the suspicion
	s.mu.bcast = nil
	s.mu.Unlock()
	pr.schedule(t0)
	s.mu.Lock()
	for k := int64(1); !m.due && k <= int64(len(pr.ring)); k++ {
		pr.scheduleSlotLocked(k) // a pass of the schedule's slots
	}
	s.mu.Unlock()
	if !m.due {
		t.Fatal("the schedule did not pick the suspect member")
	}
	pr.lastNs = t0
	pr.step(m, t0)
	if m.probe == nil {
		t.Fatal("no probe of the suspect member")
	}
	// The probe has failed once its call ended in an error or its
	// ProbeTimeout passed (the call stays open for a late reply).
	if !waitFor(10*time.Second, func() bool { return wire.AsErrno(m.probe.Err()) != wire.EAGAIN || s.ep.Now() >= m.probeEnd }) {
		t.Fatal("probe never ended")
	}
	// The tick that sees it comes at its end at the latest: a tick as
	// late as a loaded machine runs this test would find the suspicion's
	// timer run out too, and rightly declare the member dead.
	now := min(s.ep.Now(), m.probeEnd)
	pr.lastNs = now
	pr.step(m, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !m.susp.verified {
		t.Fatalf("suspicion not verified after this node's probe failed (state %v)", m.state)
	}
	if m.susp.conf != 1 {
		t.Fatalf("%d confirmations after this node's probe failed, want 1 (state %v, stats %+v)", m.susp.conf, m.state, s.Stats())
	}
	if len(s.mu.bcast) != 1 || s.mu.bcast[0].state != StateSuspect || s.mu.bcast[0].from != s.self {
		t.Fatalf("queued updates %+v, want this node's suspicion", s.mu.bcast)
	}
}

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
