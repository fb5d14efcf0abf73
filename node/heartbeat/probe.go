package heartbeat

import (
	"context"
	"net/netip"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// deadlineCtx is a context with a deadline and nothing else, reused by
// the probe loop so that a probe allocates no context. rfc.Endpoint.Go
// reads only the deadline and does not watch cancellation.
type deadlineCtx struct {
	context.Context
	at time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.at, true }
func (c *deadlineCtx) Done() <-chan struct{}       { return nil }
func (c *deadlineCtx) Err() error                  { return nil }
func (c *deadlineCtx) Value(any) any               { return nil }

// relayJob is an indirect probe this node runs for another member.
type relayJob struct {
	from   netip.AddrPort // the member that asked
	seq    uint64
	node   uint32
	target netip.AddrPort
	v      view // the asker's suspicion of the target, passed on so the target can refute it
}

// relayProbe is a relayJob in flight.
type relayProbe struct {
	job relayJob
	p   *rfc.Pending
}

// prober is the probe loop's private state: scratch buffers reused for
// every probe, the member snapshot and the relays in flight.
type prober struct {
	s       *Service
	ctx     deadlineCtx
	ps      wire.Params
	buf     []byte
	ms      []*member
	gone    []*member
	relays  []relayProbe
	helpers []netip.AddrPort
}

// probeLoop is the service's timer: every Tick it finishes the probes
// that completed, moves members through their states, starts the probes
// that are due, and runs the indirect probes other members asked for.
func (s *Service) probeLoop() {
	defer s.wg.Done()
	pr := &prober{s: s, buf: make([]byte, s.ep.Config().MaxDatagram)}
	pr.ctx.Context = context.Background()
	tk := time.NewTicker(s.cfg.Tick)
	defer tk.Stop()
	for {
		select {
		case <-s.done:
			pr.shutdown()
			return
		case <-tk.C:
		}
		now := s.ep.Now()
		pr.snapshot()
		for _, m := range pr.ms {
			pr.step(m, now)
		}
		pr.runRelays()
	}
}

// snapshot copies the member list and drops removed members, releasing
// their probes.
func (pr *prober) snapshot() {
	s := pr.s
	pr.ms, pr.gone = pr.ms[:0], pr.gone[:0]
	s.mu.Lock()
	kept := s.mu.order[:0]
	for _, m := range s.mu.order {
		if m.removed {
			pr.gone = append(pr.gone, m)
			continue
		}
		kept = append(kept, m)
	}
	clear(s.mu.order[len(kept):])
	s.mu.order = kept
	pr.ms = append(pr.ms, kept...)
	s.mu.Unlock()
	for _, m := range pr.gone {
		if m.probe != nil {
			m.probe.Release()
			m.probe = nil
		}
	}
}

func (pr *prober) shutdown() {
	pr.snapshot()
	for _, m := range pr.ms {
		if m.probe != nil {
			m.probe.Release()
			m.probe = nil
		}
	}
	for _, r := range pr.relays {
		r.p.Release()
	}
	pr.relays = pr.relays[:0]
}

// heartbeatParams fills ps over buf with a CallHeartbeat request from a
// node at incarnation inc carrying view v of the receiver.
func heartbeatParams(ps *wire.Params, buf []byte, inc uint32, v view) *wire.Params {
	ps.Reset(buf)
	ps.Uint64(uint64(inc))
	ps.Uint64(uint64(v.state))
	ps.Uint64(uint64(v.inc))
	ps.Uint64(uint64(v.died))
	return ps
}

// goProbe starts a heartbeat call to addr without waiting for it.
func (pr *prober) goProbe(addr netip.AddrPort, v view) (*rfc.Pending, error) {
	pr.ctx.at = time.Now().Add(pr.s.cfg.ProbeTimeout)
	return pr.s.ep.Go(&pr.ctx, addr, CallHeartbeat, heartbeatParams(&pr.ps, pr.buf, pr.s.ep.Incarnation(), v))
}

// readView decodes the view in a CallHeartbeat request or reply.
func readView(p *wire.Packet) view {
	if p.NParams() != hbParams {
		return view{}
	}
	return view{state: State(p.Param(hbParamViewState).Uint64()), inc: uint32(p.Param(hbParamViewInc).Uint64()),
		died: uint32(p.Param(hbParamViewDied).Uint64())}
}

// probeReply decodes a CallHeartbeat reply: the replier's incarnation and
// its view of this node.
func probeReply(r *wire.Packet) (uint32, view) {
	inc := r.Incarnation
	if r.NParams() == hbParams {
		if v := uint32(r.Param(hbParamInc).Uint64()); v > inc {
			inc = v
		}
	}
	return inc, readView(r)
}

// step advances one member. Engine calls (probes, marks, sends) happen
// outside Service.mu.
func (pr *prober) step(m *member, now int64) {
	s := pr.s
	cfg := &s.cfg
	info, known := s.ep.Peer(m.addr)

	// Finish the probe in flight, if it completed.
	probeDone, probeOK := false, false
	var repInc uint32
	var repView view
	if m.probe != nil {
		select {
		case <-m.probe.Done():
			probeDone = true
			if m.probe.Err() == nil {
				probeOK = true
				repInc, repView = probeReply(m.probe.Reply())
			}
			m.probe.Release()
			m.probe = nil
		default:
		}
	}
	if probeDone {
		s.stats.probes.Add(1)
		if !probeOK {
			s.stats.probeFails.Add(1)
		}
	}

	wantProbe := false
	pr.helpers = pr.helpers[:0]
	var seq uint64
	var dead Event
	s.mu.Lock()
	if m.removed {
		s.mu.Unlock()
		return
	}
	if known && info.LastHeardNs > m.rfcHeard {
		// Any datagram from the member counts as a sign of life.
		m.rfcHeard = info.LastHeardNs
		if m.node == 0 {
			m.node = info.Node
		}
		s.observeLocked(m, info.Incarnation, info.LastHeardNs)
	}
	if probeOK {
		s.observeLocked(m, repInc, now)
		s.selfNewsLocked(m, repView, now)
		m.tellDied = false
	}
	if m.state == StateAlive && m.since != m.loopSince {
		// Became alive since the last step (possibly elsewhere).
		m.loopSince = m.since
		m.fails, m.rounds = 0, 0
	}
	switch m.state {
	case StateAlive:
		if probeDone {
			if probeOK {
				m.fails = 0
			} else {
				m.fails++
			}
		}
		if m.fails >= cfg.SuspectAfter {
			s.toSuspectLocked(m, now)
			m.loopSince = m.since
			m.rounds = 0
			seq = pr.startRoundLocked(m, now)
			wantProbe = m.probe == nil
			break
		}
		if m.tellDied && m.probe == nil {
			// Rejoined after this node declared it dead: tell it now,
			// busy link or not, so it drops what this node gave up on.
			wantProbe = true
			break
		}
		if now >= m.probeAt {
			m.probeAt += int64(cfg.Interval)
			if m.probeAt <= now {
				m.probeAt = now + int64(cfg.Interval)
			}
			if now-m.heardNs < int64(cfg.Interval) {
				m.fails = 0
				s.stats.probesSkipped.Add(1)
			} else {
				wantProbe = m.probe == nil
			}
		}
	case StateSuspect:
		if now >= m.roundEnd {
			m.rounds++
			if m.rounds >= cfg.DeadAfter {
				dead = s.toDeadLocked(m, now)
				m.loopSince = m.since
				break
			}
			seq = pr.startRoundLocked(m, now)
		}
		// A direct probe every round, and again if one failed early.
		wantProbe = m.probe == nil && (seq != 0 || probeDone)
	case StateDead:
		// The reprobe loop looks after dead members.
	}
	v := m.viewLocked()
	sync, state := m.syncRFC, m.state
	m.syncRFC = false
	node := m.node
	s.mu.Unlock()

	if sync {
		switch state {
		case StateAlive:
			if known && info.State != rfc.PeerAlive {
				s.ep.MarkAlive(m.addr)
			}
		case StateSuspect:
			s.ep.MarkSuspect(m.addr)
		case StateDead:
			s.ep.MarkDead(m.addr)
		}
	}
	if dead.Kind != 0 {
		s.finishDeath(m, dead) // the calls have failed first
	}
	if wantProbe {
		if p, err := pr.goProbe(m.addr, v); err == nil {
			m.probe = p
		} else {
			s.stats.probes.Add(1)
			s.stats.probeFails.Add(1)
		}
	}
	if seq != 0 {
		pr.sendIndirect(seq, node, m.addr, v)
	}
}

// startRoundLocked opens a suspect round: its deadline, its sequence
// number, and the helpers (alive members other than m, chosen round-robin)
// left in pr.helpers.
func (pr *prober) startRoundLocked(m *member, now int64) uint64 {
	s := pr.s
	m.roundEnd = now + int64(s.cfg.RoundTimeout)
	seq := s.seq.Add(1)
	m.ackSeq = seq
	n := len(s.mu.order)
	for i := 0; i < n && len(pr.helpers) < s.cfg.IndirectProbes; i++ {
		h := s.mu.order[(s.mu.helper+i)%n]
		if h != m && !h.removed && h.state == StateAlive {
			pr.helpers = append(pr.helpers, h.addr)
		}
	}
	if n > 0 {
		s.mu.helper = (s.mu.helper + 1) % n
	}
	return seq
}

// sendIndirect asks the helpers in pr.helpers to probe target.
func (pr *prober) sendIndirect(seq uint64, node uint32, target netip.AddrPort, v view) {
	s := pr.s
	var addr [maxAddrText]byte
	text := target.AppendTo(addr[:0])
	for _, h := range pr.helpers {
		pr.ps.Reset(pr.buf)
		pr.ps.Uint64(seq)
		pr.ps.Uint64(uint64(node))
		pr.ps.String(string(text))
		pr.ps.Uint64(uint64(v.state))
		pr.ps.Uint64(uint64(v.inc))
		if s.ep.Send(h, CallProbeRequest, &pr.ps) == nil {
			s.stats.indirectSent.Add(1)
		}
	}
}

// runRelays starts the indirect probes other members asked for and
// acknowledges those that completed.
func (pr *prober) runRelays() {
	s := pr.s
drain:
	for len(pr.relays) < s.cfg.RelayQueue {
		var job relayJob
		select {
		case job = <-s.relayQ:
		default:
			break drain
		}
		p, err := pr.goProbe(job.target, job.v)
		if err != nil {
			pr.ack(&job, false, 0)
			continue
		}
		s.stats.relayed.Add(1)
		pr.relays = append(pr.relays, relayProbe{job: job, p: p})
	}
	kept := pr.relays[:0]
	for _, r := range pr.relays {
		select {
		case <-r.p.Done():
			if r.p.Err() == nil {
				inc, _ := probeReply(r.p.Reply())
				pr.ack(&r.job, true, inc)
			} else {
				pr.ack(&r.job, false, 0)
			}
			r.p.Release()
		default:
			kept = append(kept, r)
		}
	}
	clear(pr.relays[len(kept):])
	pr.relays = kept
}

// ack tells the member that asked for an indirect probe how it went.
func (pr *prober) ack(job *relayJob, reached bool, inc uint32) {
	pr.ps.Reset(pr.buf)
	pr.ps.Uint64(job.seq)
	pr.ps.Uint64(uint64(job.node))
	pr.ps.Bool(reached)
	pr.ps.Uint64(uint64(inc))
	_ = pr.s.ep.Send(job.from, CallProbeAck, &pr.ps)
}

// reprobeLoop probes dead members every ReprobeInterval with
// rfc.Endpoint.Probe, the one call that reaches a peer the engine has
// marked dead. A dead member that answers with a higher incarnation, or
// that learns from the probe that it was declared dead and refutes it,
// is alive again.
func (s *Service) reprobeLoop() {
	defer s.wg.Done()
	tk := time.NewTicker(s.cfg.ReprobeInterval)
	defer tk.Stop()
	type target struct {
		addr netip.AddrPort
		v    view
	}
	var dead []target
	var ps wire.Params
	buf := make([]byte, s.ep.Config().MaxDatagram)
	var rep rfc.Reply
	for {
		select {
		case <-s.done:
			return
		case <-tk.C:
		}
		dead = dead[:0]
		s.mu.Lock()
		for _, m := range s.mu.order {
			if !m.removed && m.state == StateDead {
				dead = append(dead, target{m.addr, m.viewLocked()})
			}
		}
		s.mu.Unlock()
		for _, t := range dead {
			select {
			case <-s.done:
				return
			default:
			}
			heartbeatParams(&ps, buf, s.ep.Incarnation(), t.v)
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProbeTimeout)
			err := s.ep.Probe(ctx, t.addr, CallHeartbeat, &ps, &rep)
			cancel()
			if err != nil {
				continue
			}
			inc, v := probeReply(&rep.Packet)
			now := s.ep.Now()
			s.mu.Lock()
			if m := s.mu.members[t.addr]; m != nil {
				s.observeLocked(m, inc, now)
				s.reviveAtTopLocked(m, t.v, inc, now)
				s.selfNewsLocked(m, v, now)
			}
			s.mu.Unlock()
		}
	}
}
