package heartbeat

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
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
	t.Cleanup(pr.shutdown)
	gone := newEndpoint(t, 2, nil)
	addr := gone.Addr()
	gone.Close()
	if err := s.AddMember(addr); err != nil {
		t.Fatal(err)
	}
	return s, pr, s.mu.members[addr]
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
