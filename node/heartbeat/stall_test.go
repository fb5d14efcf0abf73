package heartbeat

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

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
