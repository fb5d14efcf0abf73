package heartbeat

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

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
// every probe, the members it steps each tick, the probe schedule and
// the relays in flight.
type prober struct {
	s          *Service
	ctx        deadlineCtx
	ps         wire.Params
	buf        []byte
	upd        []byte
	active     []*member // stepped every tick: probes in flight, failures, suspects, pinned, touched
	ring       []*member // the probe schedule: the members and this node (nil), in address order
	rank       int       // this node's place in ring
	phase      int64     // this node's offset within each probe slot, ns: rank·slot/len(ring)
	ringGen    uint64
	slot       int64 // the last probe slot scheduled (wall clock / slot length; 0: none yet)
	lastNs     int64 // engine clock of the previous tick
	grid       int64 // engine clock the loop started: it ticks at grid + k·Tick
	wantAt     int64 // engine clock the loop meant this tick, or the next, to run at (plan)
	lastWant   int64 // wantAt of the previous tick (gauge)
	onTime     int64 // engine clock since which every tick was on time
	health     int   // local health score (loop-owned; published in Stats)
	late       int64 // how much later than planned this tick came past the previous one (0: on time; see gauge)
	gossipAt   int64 // engine clock of the next gossip round
	heldTill   int64 // engine clock until which this node holds its verdicts (step), one Interval past its last health above claimHealthMax
	credit     int64 // failure-driven work banked, ns: a datagram costs cost(), at most bank() is held (Config.Budget)
	roundWait  int64 // engine clock of the last tick an indirect round waited for the budget (0: none; spend)
	urgentNext int64 // engine clock from which an urgent gossip datagram may again be sent past the rounds' reserve (gossip)
	lagCur     int64 // the latest a tick came past Tick in this lag window, ns (only lateness over a Tick counts)
	lagPrev    int64 // the same in the previous window
	lagAt      int64 // engine clock the lag window began (windows an Interval long from the loop's start)
	targets    []netip.AddrPort
	relays     []relayProbe
	helpers    []netip.AddrPort
	rnd        *rand.Rand // gossip targets, seeded from this node's incarnation and address
}

// healthMax bounds the local health score: timeouts stretch at most
// 1+healthMax times.
const healthMax = 4

// claimHealthMax bounds what others' claims about this node can raise the
// local health to: a refutation raises it only below this, and does not
// hold it there (it falls after an Interval of ticks on time as usual).
// Any member can make a new claim each Interval (each refuted, the next
// is about the new incarnation); were each refutation to raise the health
// up to healthMax, it could stretch this node's timeouts as far as a
// stall does. Only this node's own late ticks raise it further.
const claimHealthMax = 1

// probeLoop is the service's timer: at points of a grid Tick apart it
// finishes the probes that completed, moves members through their
// states, starts the probes that are due, and runs the indirect probes
// other members asked for. It ticks at every point while anything needs
// stepping (plan) and otherwise sleeps to the first point at or after
// its next due event: the next slot of the probe schedule, the next
// probe of a member probed on its own cadence, the gossip time while
// updates wait, the fall of the local health. Work handed to it while it
// sleeps (wakeLoop) wakes it only to move its timer to the next point.
// An idle member thus wakes a few times per Interval, not every Tick,
// and every tick it does run comes at the instant the fixed Tick would
// have run it. Its work per tick is bounded by the members it must step
// (probes in flight, failures, suspects, pinned and touched members, and
// the ProbesPerInterval the schedule picks), not by the member count.
// The schedule's shuffles draw from seed and the endpoint's address, not
// from the global generator, so that a run whose incarnations are fixed
// (the simulation) replays.
func (s *Service) probeLoop(seed uint64) {
	defer s.wg.Done()
	pr := &prober{s: s, buf: make([]byte, s.ep.Config().MaxDatagram), upd: make([]byte, 0, piggybackBuf)}
	addr := s.ep.Addr().Addr().As16()
	pr.rnd = rand.New(rand.NewPCG(seed, xxhash.Sum64(addr[:])^uint64(s.ep.Addr().Port())))
	pr.ctx.Context = context.Background()
	tm := time.NewTimer(s.cfg.Tick)
	defer tm.Stop()
	pr.lastNs = s.ep.Now()
	pr.grid = pr.lastNs
	pr.lastWant = pr.lastNs
	pr.wantAt = pr.lastNs + int64(s.cfg.Tick)
	pr.onTime = pr.lastNs
	pr.lagAt = pr.lastNs
	pr.credit = pr.bank()
	for {
		select {
		case <-s.done:
			pr.shutdown()
			return
		case <-tm.C:
		case <-s.wake:
			// Work handed over while asleep: tick at the next point.
			s.stats.wakes.Add(1)
			now := s.ep.Now()
			if at := pr.gridAfter(now); at < pr.wantAt {
				pr.wantAt = at
				tm.Reset(time.Duration(at - now))
			}
			continue
		}
		s.stats.wakes.Add(1)
		s.asleep.Store(false)
		select {
		case <-s.done:
			// Closed at the instant of a tick: no tick, whichever case
			// the select above drew.
			pr.shutdown()
			return
		case <-s.wake:
			// Sent before asleep was cleared: this tick sees the work.
		default:
		}
		pr.tick(s.ep.Now())
		now := s.ep.Now()
		pr.wantAt = pr.plan(now)
		tm.Reset(time.Duration(pr.wantAt - now))
	}
}

// gridAfter is the first point of the loop's grid (grid + k·Tick) at or
// after t and after the last tick.
func (pr *prober) gridAfter(t int64) int64 {
	tick := int64(pr.s.cfg.Tick)
	t = max(t, pr.lastNs+1)
	return pr.grid + (t-pr.grid+tick-1)/tick*tick
}

// plan returns the engine clock of the loop's next tick, after a tick
// that began at pr.lastNs and ended at now: the next point of the grid
// after the tick's start while anything needs stepping or when the tick
// ran past that point (then at once, as a fixed ticker's pending tick
// would come, so that a stall inside a tick is lateness to gauge), else
// the first point at or after its next due event, with asleep set so
// that work handed over meanwhile wakes it (wakeLoop).
// Stepped at every point are the members in the active list, save one
// probed on its own cadence with nothing in flight or pending (its next
// probe is due at probeAt), the relays in flight or queued, a gossip
// due at once, a refutation the health has not taken yet, and the
// members touched. An alive member no one has touched is stepped only
// when the schedule picks it, so it needs no tick.
func (pr *prober) plan(now int64) int64 {
	s := pr.s
	cfg := &s.cfg
	soon := pr.gridAfter(pr.lastNs)
	if len(pr.relays) > 0 || soon <= now {
		// Relays in flight, or the tick ran past its next point: the
		// next comes at once and gauges the overrun, whatever is due.
		return soon
	}
	// The next slot of the schedule, counted on the wall clock as
	// schedule counts it: within one slot of now, wherever the wall
	// clock stepped.
	unit := int64(cfg.Interval) / int64(cfg.ProbesPerInterval)
	wall := time.Now().UnixNano() - pr.phase
	slot := now + (wall/unit+1)*unit - wall
	if wall < 0 {
		slot = now + unit // before 1970 plus a phase: not worth exactness
	}
	at := now + int64(cfg.Interval) // at most an Interval asleep, whatever is missed below
	if pr.health > 0 {
		at = pr.onTime + int64(cfg.Interval) // gauge lowers it
	}
	s.asleep.Store(true)
	s.mu.Lock()
	// The queue is read after the lock's acquire, which orders it after
	// the store above on every architecture: a relay queued before a
	// handler's wakeLoop saw asleep false is seen here.
	busy := len(s.relayQ) > 0 || len(s.mu.touched) > 0 || s.mu.gossipNow || s.mu.selfRefuted || s.mu.pruned || pr.ringGen != s.mu.gen
	if s.pendingUpdatesLocked() && cfg.GossipNodes > 0 && cfg.Retransmit > 0 {
		at = min(at, pr.gossipAt)
	}
	small := len(s.mu.members) <= cfg.ProbesPerInterval
	if !small {
		at = min(at, slot) // a cluster this small is probed whole, on the members' cadence
	}
	for _, m := range pr.active {
		if busy {
			break
		}
		if m.removed || m.touched || m.due || m.probe != nil || m.lateProbe != nil ||
			m.state != StateAlive || m.since != m.loopSince || m.syncRFC ||
			m.fails > 0 || m.ackSeq != 0 || m.tellDied || m.probeNow || !(m.pinned || small) {
			busy = true
			break
		}
		at = min(at, m.probeAt)
	}
	s.mu.Unlock()
	if busy || at <= soon {
		s.asleep.Store(false)
		return soon
	}
	return pr.gridAfter(at)
}

// tick is one pass of the probe loop at engine clock now.
func (pr *prober) tick(now int64) {
	pr.gauge(now)
	pr.schedule(now)
	kept := pr.active[:0]
	for _, m := range pr.active {
		if pr.step(m, now) {
			kept = append(kept, m)
		} else {
			m.active = false
		}
	}
	clear(pr.active[len(kept):])
	pr.active = kept
	pr.runRelays()
	pr.gossip(now)
}

// gauge updates the local health score from this node's own timeliness:
// a tick later than Interval/4 past its time raises it by one, and so
// does a refutation of a claim about this node, up to claimHealthMax; an
// Interval of ticks on time lowers it by one. A slow node thus stretches
// its own timeouts before it blames others. A late tick also sets pr.late: the time this node was stalled
// does not count against others (step shifts its rounds and suspicion
// timers past it and ignores the probes that failed meanwhile).
func (pr *prober) gauge(now int64) {
	s := pr.s
	tick := int64(s.cfg.Tick)
	// How much longer than planned the gap since the previous tick was:
	// planned is the gap between the times the loop meant the two ticks
	// to run at (plan), a Tick while it ticks at every point of its grid,
	// longer after a planned sleep, which is thus no late tick.
	over := now - pr.lastNs - (pr.wantAt - pr.lastWant)
	pr.lastWant = pr.wantAt
	late := over > int64(s.cfg.Interval)/4
	pr.late = 0
	if late {
		pr.late = over
	}
	// The lag: how late this node's own ticks come, over the last one
	// to two Intervals. Replies to this node's probes and its view of
	// others' timers are as late as its own ticks, so the deadlines it
	// sets wait that much longer (lag); one missed Tick or less is
	// granularity, not lag.
	// The windows are an Interval long from the loop's start, whatever
	// the ticks: the loop sleeps up to an Interval, and a window begun
	// at a tick after a sleep would hold a late tick that much longer.
	if d := now - pr.lagAt; d >= int64(s.cfg.Interval) {
		if d >= 2*int64(s.cfg.Interval) {
			pr.lagCur = 0 // a window with no tick came between
		}
		pr.lagPrev, pr.lagCur = pr.lagCur, 0
		pr.lagAt += d / int64(s.cfg.Interval) * int64(s.cfg.Interval)
	}
	if over > tick && over > pr.lagCur {
		pr.lagCur = over
	}
	if now > pr.lastNs {
		pr.credit = min(pr.credit+now-pr.lastNs, pr.bank())
	}
	pr.lastNs = now
	s.mu.Lock()
	refuted := s.mu.selfRefuted
	s.mu.selfRefuted = false
	s.mu.Unlock()
	held := pr.health > claimHealthMax
	switch {
	case late:
		if pr.health < healthMax {
			pr.health++
		}
		pr.onTime = now
	case refuted && pr.health < claimHealthMax:
		pr.health++
		pr.onTime = now
	case now-pr.onTime >= int64(s.cfg.Interval):
		if pr.health > 0 {
			pr.health--
		}
		pr.onTime = now
	}
	if pr.health > claimHealthMax {
		pr.heldTill = now + int64(s.cfg.Interval)
	} else if held {
		// Above claimHealthMax until this tick: held as long as if the
		// loop had ticked a Tick before (it may have slept since).
		pr.heldTill = max(pr.heldTill, now-tick+int64(s.cfg.Interval))
	}
	s.stats.health.Store(int64(pr.health))
}

// stretch scales a timeout by the local health score.
func (pr *prober) stretch(d time.Duration) time.Duration {
	return d * time.Duration(1+pr.health)
}

// lag is how late this node's own ticks have come over the last one to
// two Intervals (0 when none came more than a Tick late), at most one
// Interval. The deadlines this node sets for others (a probe, an
// indirect round, a suspicion timer) are stretched by the health score
// and then extended by the lag: a node whose timers run late also reads
// replies late. A longer stall is the stall rule's (gauge): the timers
// open across it move past it.
func (pr *prober) lag() int64 {
	return min(max(pr.lagCur, pr.lagPrev), int64(pr.s.cfg.Interval))
}

// cost is what one datagram of failure-driven work draws from the
// budget, in ns of credit: Interval·(1+health)²/Budget, so that the
// credit earned in one Interval, one ns per ns, pays for
// Budget/(1+health)² datagrams: 16, 4, 1.8, 1, 0.64 per Interval with
// the default Budget. The schedule's own probes fall as 1/(1+health)
// (schedule); the failures a starved node sees are mostly its own
// lateness, so the work they cause falls faster.
func (pr *prober) cost() int64 {
	h := int64(1 + pr.health)
	return h * h * int64(pr.s.cfg.Interval) / int64(max(1, pr.s.cfg.Budget))
}

// bank is the most credit held: one Interval, and at least two indirect
// rounds' worth (IndirectProbes requests and the direct probe each), so
// that a member at any health can still open a round and run a relay
// (spendLow).
func (pr *prober) bank() int64 {
	return max(int64(pr.s.cfg.Interval), int64(2*(pr.s.cfg.IndirectProbes+1))*pr.cost())
}

// spend draws n datagrams of failure-driven work from the budget and
// reports whether they may be sent now (Config.Budget; 0: always).
// Work refused is tried again at a later tick (a relay is dropped): a
// member starved of CPU, whose probes fail because its own replies and
// timers run late, does not add work in proportion to its failures.
// While an indirect round waits for the budget (refused at this tick or
// the one before: a waiting round is tried at every tick), spend leaves
// one round's worth in the bank: a round needs that much at once, and
// single datagrams drawn as soon as each is paid for (a gossip retried
// at every tick after refutations, the checks of claims heard) would
// otherwise never leave it there. Before, a member holding the key that
// told each member once per Tick that it was suspect kept the rounds of
// a crashed member from opening for several DetectBounds
// (TestAttackClaimsStarveRounds).
func (pr *prober) spend(n int) bool {
	keep := 0
	if pr.roundWait != 0 && pr.lastNs-pr.roundWait <= int64(pr.s.cfg.Tick) {
		keep = pr.s.cfg.IndirectProbes + 1
	}
	return pr.draw(n, keep)
}

// spendRound is spend for an indirect round at engine clock now (its
// requests and direct probe); refused, it keeps a round's worth from the
// other work until the round is paid (spend).
func (pr *prober) spendRound(n int, now int64) bool {
	if pr.draw(n, 0) {
		return true
	}
	pr.roundWait = now
	return false
}

// spendLow is spend for work done for others (an indirect probe asked
// for): it leaves one indirect round's worth in the bank, so that this
// node's own rounds and probes, paid at the next ticks, come first.
func (pr *prober) spendLow(n int) bool {
	return pr.draw(n, pr.s.cfg.IndirectProbes+1)
}

// draw takes n datagrams from the budget if n+keep are there.
func (pr *prober) draw(n, keep int) bool {
	s := pr.s
	if s.cfg.Budget == 0 {
		s.stats.extra.Add(uint64(n))
		return true
	}
	c := int64(n) * pr.cost()
	if pr.credit < c+int64(keep)*pr.cost() {
		s.stats.deferred.Add(uint64(n))
		return false
	}
	pr.credit -= c
	s.stats.extra.Add(uint64(n))
	return true
}

// schedule adds to the active list the members touched outside the loop
// and the members the probe schedule picks for this tick:
// ProbesPerInterval per Interval, one per slot of
// Interval/ProbesPerInterval. The slots are counted on the wall clock, so
// that the members' slots line up, and in slot k a member probes the
// member 1 + k mod (len−1) places after itself in ring, the member list
// and itself in address order. Members that hold the same list thus
// probe in each slot a permutation of the cluster: every member is
// probed by some member once per slot, and by each member once per pass
// of len−1 slots (DetectBoundAt). A crashed member is probed within a
// slot or two of its crash, where a random schedule leaves it unprobed
// for several Intervals now and then. Each member's slots begin at its
// own phase, rank·slot/len, so that the cluster's probes are spread over
// the slot rather than sent by every member within a Tick of its start:
// members that share a host or a process (a test, a benchmark) would
// otherwise queue up behind one another at every slot. Members whose
// lists differ, or whose clocks do, still probe each member once per
// pass. Suspect members stay
// in the schedule (Lifeguard): a failed probe of one is a confirmation,
// a reply clears it here and the probe tells it it is suspected.
func (pr *prober) schedule(now int64) {
	s := pr.s
	cfg := &s.cfg
	unit := int64(cfg.Interval) / int64(cfg.ProbesPerInterval)
	s.mu.Lock()
	if s.mu.pruned {
		kept := s.mu.order[:0]
		for _, m := range s.mu.order {
			if !m.removed {
				kept = append(kept, m)
			}
		}
		clear(s.mu.order[len(kept):])
		s.mu.order = kept
		s.mu.pruned = false
	}
	for _, m := range s.mu.touched {
		m.touched = false
		pr.activate(m)
	}
	clear(s.mu.touched)
	s.mu.touched = s.mu.touched[:0]
	if pr.ringGen != s.mu.gen {
		pr.ring = pr.ring[:0]
		for _, m := range s.mu.order {
			if !m.removed {
				pr.ring = append(pr.ring, m)
			}
		}
		pr.ring = append(pr.ring, nil)
		self := s.ep.Addr()
		slices.SortFunc(pr.ring, func(a, b *member) int { return ringAddr(a, self).Compare(ringAddr(b, self)) })
		pr.rank = slices.Index(pr.ring, nil)
		pr.phase = int64(pr.rank) * unit / int64(len(pr.ring))
		pr.ringGen = s.mu.gen
	}
	k := (time.Now().UnixNano() - pr.phase) / unit
	n := k - pr.slot
	if pr.slot == 0 || n < 0 {
		n = 1 // the first tick, or the clock stepped back
	}
	n = min(n, int64(cfg.ProbesPerInterval)) // no burst after a stall
	pr.slot = k
	if len(s.mu.members) <= cfg.ProbesPerInterval {
		// A cluster this small is probed whole every Interval, each
		// member on its own cadence.
		for _, m := range s.mu.order {
			if !m.removed {
				pr.activate(m)
			}
		}
		n = 0
	}
	for i := k - n + 1; i <= k; i++ {
		// A node at local health h above claimHealthMax uses one slot
		// in 1+h (Lifeguard stretches the probe period): a node whose
		// own ticks run late probes less, so that its probes, and the
		// work their failures cause, fit the CPU it gets. It holds its
		// verdicts then; at claimHealthMax or below it still judges, and
		// keeps every slot, so that its suspicions are checked within
		// the detection bound.
		if pr.health <= claimHealthMax || i%int64(1+pr.health) == 0 {
			pr.scheduleSlotLocked(i)
		}
	}
	s.mu.Unlock()
}

// scheduleSlotLocked picks the member slot k of the schedule names, unless
// it is dead (the reprobe loop's), pinned (probed on its own cadence) or
// already being probed.
func (pr *prober) scheduleSlotLocked(k int64) {
	if len(pr.ring) < 2 {
		return
	}
	d := 1 + int(uint64(k)%uint64(len(pr.ring)-1))
	m := pr.ring[(pr.rank+d)%len(pr.ring)]
	if m.removed || m.state == StateDead || m.pinned || m.probe != nil || m.due {
		return
	}
	m.due = true
	pr.activate(m)
}

// ringAddr is the address of ring entry m (nil: this node, at self).
func ringAddr(m *member, self netip.AddrPort) netip.AddrPort {
	if m == nil {
		return self
	}
	return m.addr
}

func (pr *prober) activate(m *member) {
	if !m.active {
		m.active = true
		pr.active = append(pr.active, m)
	}
}

func (pr *prober) shutdown() {
	for _, m := range pr.active {
		m.releaseProbes()
	}
	for _, r := range pr.relays {
		r.p.Release()
	}
	pr.relays = pr.relays[:0]
}

// gossip sends the waiting updates to GossipNodes random members (alive
// or suspect: a suspected member hears of it and refutes), one CallGossip
// datagram each, every GossipInterval stretched by the local health, and
// at the first tick after this node refuted a claim about itself or
// began to suspect a member (Service.mu.gossipNow): a refutation races
// the suspicion timers of the members that heard the claim (and raises
// the local health, which stretches the period), and a suspicion passed
// on at once reaches every member in a few link delays rather than a few
// gossip periods, so that their timers start sooner. Nothing is sent
// when no update waits.
func (pr *prober) gossip(now int64) {
	s := pr.s
	cfg := &s.cfg
	if cfg.GossipNodes == 0 || cfg.Retransmit == 0 {
		return
	}
	s.mu.Lock()
	urgent := s.mu.gossipNow
	s.mu.gossipNow = false
	s.mu.Unlock()
	if !urgent && now < pr.gossipAt {
		return
	}
	if !urgent {
		// A slow node (local health) gossips less, as it probes less.
		pr.gossipAt += int64(pr.stretch(cfg.GossipInterval))
		if pr.gossipAt <= now {
			pr.gossipAt = now + int64(pr.stretch(cfg.GossipInterval))
		}
	}
	pr.targets = pr.targets[:0]
	s.mu.Lock()
	if n := len(s.mu.order); n > 0 && s.pendingUpdatesLocked() {
		for tries := 0; tries < 4*cfg.GossipNodes && len(pr.targets) < cfg.GossipNodes; tries++ {
			m := s.mu.order[pr.rnd.IntN(n)]
			if m.removed || m.state == StateDead || containsAddr(pr.targets, m.addr) {
				continue
			}
			pr.targets = append(pr.targets, m.addr)
		}
	}
	s.mu.Unlock()
	for i, a := range pr.targets {
		s.mu.Lock()
		pending := s.pendingUpdatesLocked()
		s.mu.Unlock()
		if !pending {
			break
		}
		ok := pr.spend(1)
		if !ok && urgent && i == 0 && now >= pr.urgentNext {
			// A refutation or a new suspicion is not kept back for the
			// rounds waiting (spend), at most once per Interval: the
			// refutation races timers as short as SuspicionMin, and
			// claims made at every tick still leave the rounds most of
			// the budget.
			if ok = pr.draw(1, 0); ok {
				pr.urgentNext = now + int64(cfg.Interval)
			}
		}
		if !ok {
			if urgent && i == 0 {
				// Tried again at the next tick.
				s.mu.Lock()
				s.mu.gossipNow = true
				s.mu.Unlock()
			}
			break
		}
		pr.upd = s.takeUpdates(pr.upd[:0], piggybackBuf)
		if len(pr.upd) == 0 {
			break
		}
		pr.ps.Reset(pr.buf)
		pr.ps.Uint64(uint64(s.ep.Incarnation()))
		pr.ps.Bytes(pr.upd)
		if s.ep.Send(a, CallGossip, &pr.ps) == nil {
			s.stats.gossipSent.Add(1)
		}
	}
}

func containsAddr(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// heartbeatParams fills ps over buf with a CallHeartbeat request from a
// node at incarnation inc carrying view v of the receiver and the packed
// membership updates upd (may be empty).
func heartbeatParams(ps *wire.Params, buf []byte, inc uint32, v view, upd []byte) *wire.Params {
	ps.Reset(buf)
	ps.Uint64(uint64(inc))
	ps.Uint64(uint64(v.state))
	ps.Uint64(uint64(v.inc))
	ps.Uint64(uint64(v.died))
	ps.Bytes(upd)
	return ps
}

// goProbe starts a heartbeat call to addr without waiting for it,
// piggybacking the membership updates due; the call's deadline is
// timeout stretched by the local health.
func (pr *prober) goProbe(addr netip.AddrPort, v view, timeout time.Duration, lag int64) (*rfc.Pending, error) {
	pr.ctx.at = time.Now().Add(pr.stretch(timeout) + time.Duration(lag))
	pr.upd = pr.s.takeUpdates(pr.upd[:0], piggybackBuf)
	return pr.s.ep.Go(&pr.ctx, addr, CallHeartbeat, heartbeatParams(&pr.ps, pr.buf, pr.s.ep.Incarnation(), v, pr.upd))
}

// readView decodes the view in a CallHeartbeat request or reply. ok is
// false for a state that is none or an incarnation past 32 bits: a
// request is refused EINVAL, a reply's view is taken as none.
func readView(p *wire.Packet) (view, bool) {
	if p.NParams() < hbParams || p.Param(hbParamViewDied).Type != wire.TypeUint64 {
		return view{}, true
	}
	st, sok := readState(p.Param(hbParamViewState))
	inc, iok := p.Param(hbParamViewInc).Uint32()
	died, dok := p.Param(hbParamViewDied).Uint32()
	if !sok || !iok || !dok {
		return view{}, false
	}
	return view{state: st, inc: inc, died: died}, true
}

// readState decodes a u64 view state; ok is false for a value that is no
// State (at or above stateLimit), which would otherwise be cut to 8 bits.
func readState(v wire.Value) (State, bool) {
	x := v.Uint64()
	if x >= uint64(stateLimit) {
		return 0, false
	}
	return State(x), true
}

// probeReply decodes a CallHeartbeat reply: the replier's incarnation and
// its view of this node.
func probeReply(r *wire.Packet) (uint32, view) {
	inc := r.Incarnation
	if r.NParams() >= hbParams && r.Param(hbParamInc).Type == wire.TypeUint64 {
		if v, ok := r.Param(hbParamInc).Uint32(); ok && v > inc {
			inc = v
		}
	}
	v, _ := readView(r)
	return inc, v
}

// step advances one member and reports whether the loop must step it
// again at the next tick. Engine calls (probes, marks, sends) happen
// outside Service.mu.
func (pr *prober) step(m *member, now int64) bool {
	s := pr.s
	cfg := &s.cfg
	info, known := s.ep.Peer(m.addr)

	// Finish the probe in flight, if it completed or its ProbeTimeout
	// passed. A probe with no reply by then has failed, but its call
	// stays open until Interval after it was sent (lateProbe): a reply
	// that comes later is a sign of life all the same (the engine
	// counts only replies to open calls), so that a slow or
	// retransmitted exchange is not taken for silence.
	probeDone, probeOK := false, false
	var repInc uint32
	var repView view
	if m.probe != nil {
		if done, ok := pr.reap(m, m.probe, now, &repInc, &repView); done {
			probeDone, probeOK = true, ok
			m.probe = nil
		} else if now >= m.probeEnd {
			probeDone = true
			if m.lateProbe != nil {
				m.lateProbe.Release()
			}
			m.lateProbe, m.probe = m.probe, nil
		}
	}
	lateOK := false
	if m.lateProbe != nil {
		if done, ok := pr.reap(m, m.lateProbe, now, &repInc, &repView); done {
			lateOK = ok
			m.lateProbe = nil
		}
	}
	if probeDone {
		s.stats.probes.Add(1)
		if !probeOK {
			s.stats.probeFails.Add(1)
		}
	}

	wantProbe := false
	lazy := false // a suspicion heard here is checked late (below)
	pr.helpers = pr.helpers[:0]
	var seq uint64
	var dead Event
	s.mu.Lock()
	if m.removed {
		s.mu.Unlock()
		m.releaseProbes()
		m.due = false
		return false
	}
	if known && info.LastHeardNs > m.rfcHeard {
		// Any datagram from the member counts as a sign of life.
		m.rfcHeard = info.LastHeardNs
		s.adoptNodeLocked(m, info.Node)
		s.observeLocked(m, info.Incarnation, info.LastHeardNs)
	}
	if probeOK || lateOK {
		s.observeLocked(m, repInc, now)
		s.selfNewsLocked(m, repView, now)
		m.tellDied = false
	}
	if m.state == StateAlive && m.since != m.loopSince {
		// Became alive since the last step (possibly elsewhere).
		m.loopSince = m.since
		m.fails = 0
	}
	due := m.due
	m.due = false
	small := len(s.mu.members) <= cfg.ProbesPerInterval
	stalled := pr.late > 0
	if stalled {
		// This node was stalled: the time does not count against m.
		m.roundEnd += pr.late
		m.susp.start += pr.late
	}
	// A node whose own ticks run late (health above what others' claims
	// can raise it to, or was within the last Interval) holds its
	// verdicts: the failures it sees are most likely its own lateness.
	// Its failed probes count for nothing (no indirect round, no
	// confirmation, no verified suspicion), nor do those of probes it
	// sent while it held them, and an indirect round that ran out stays
	// open; once its ticks are on time again (health falls by one per
	// Interval) a failed probe of its own counts as before.
	// A member probed on its own cadence (pinned, a small cluster) is
	// judged as before, on the stretched timeouts alone: its detection
	// bound (DetectBound) is what a master/worker pair and a small
	// cluster rely on, and one member's probes cannot make a storm.
	own := m.pinned || small
	holding := stalled || !own && (pr.health > claimHealthMax || now < pr.heldTill)
	held := holding || !own && probeDone && m.probeHeld
	var lag int64
	if !own {
		lag = pr.lag()
	}
	switch m.state {
	case StateAlive:
		if probeDone {
			if probeOK {
				m.fails = 0
			} else if !held {
				m.fails++
			}
		}
		if m.ackSeq != 0 {
			// An indirect round is open: any sign of life since it began
			// closes it; none by its end makes m suspect.
			if m.heardNs >= m.roundStart {
				m.ackSeq, m.fails = 0, 0
				break
			}
			if now < m.roundEnd || held {
				break
			}
			s.toSuspectLocked(m, now)
			m.loopSince = m.since
			m.susp = suspicion{start: now, own: true, verified: true, health: pr.health}
			m.susp.confirmers[0] = s.self
			m.susp.n = 1
			s.enqueueLocked(m.addr, m.node, StateSuspect, m.inc)
			s.mu.gossipNow = true
			// Tell m now (a live member refutes), then every Interval.
			m.probeAt = now + int64(cfg.Interval)
			wantProbe = m.probe == nil
			// And open a fresh round at once (suspectRoundLocked): the
			// one that ran out may only have run late or lost a
			// datagram, and its helpers' probes now tell m that it is
			// suspected where this node's own may not reach it.
			seq = pr.suspectRoundLocked(m, own, now, lag)
			break
		}
		if m.fails >= cfg.SuspectAfter {
			// The round (its requests and a direct probe) is paid from
			// the budget, unless m is probed on its own cadence; with
			// none left it opens at a later tick, and m is suspected
			// later.
			cost := cfg.IndirectProbes
			if m.probe == nil {
				cost++
			}
			if own || pr.spendRound(cost, now) {
				seq = pr.startRoundLocked(m, now, lag)
				wantProbe = m.probe == nil
			}
			break
		}
		if m.tellDied && m.probe == nil {
			// Rejoined after this node declared it dead: tell it now,
			// busy link or not, so it drops what this node gave up on.
			wantProbe = own || pr.spend(1)
			break
		}
		// A pinned member, one whose last probe failed, and every member
		// of a cluster of ProbesPerInterval+1 or fewer are probed on
		// their own cadence every Interval; the others when the schedule
		// picks them.
		// A probe of a member whose last probe failed is paid from the
		// budget; with none left it waits for a later tick.
		heard := now-m.heardNs < int64(cfg.Interval)
		if due || ((m.pinned || m.fails > 0 || small) && now >= m.probeAt &&
			(m.pinned || small || heard || m.probe != nil || pr.spend(1))) {
			m.probeAt += int64(cfg.Interval)
			if m.probeAt <= now {
				m.probeAt = now + int64(cfg.Interval)
			}
			if heard {
				m.fails = 0
				s.stats.probesSkipped.Add(1)
			} else {
				wantProbe = m.probe == nil
			}
		}
	case StateSuspect:
		if probeDone && !probeOK && !held {
			// This node's own probe failed too: the suspicion is verified
			// here, and, unless the probe only checked a suspicion heard
			// (see probeNow below), a confirmation, passed on.
			m.susp.verified = true
			if (!m.checking || m.pinned || small) && m.susp.confirm(s.self) {
				s.enqueueLocked(m.addr, m.node, StateSuspect, m.inc)
			}
		}
		n := len(s.mu.members) + 1
		to := suspicionTimeout(cfg, n, m.susp.conf)
		if m.pinned {
			to = min(to, suspicionTimeout(cfg, cfg.ProbesPerInterval+1, m.susp.conf))
		}
		start := m.susp.start
		if !own {
			// The time this node held its verdicts does not count
			// against m: its timer runs from the end of the last hold,
			// so that the members suspected meanwhile have a whole
			// timeout to answer once this node reads replies in time
			// again (without it, every suspicion whose timer ran out
			// during a hold ended in a death at the first failed probe
			// after it).
			start = max(start, pr.heldTill)
		}
		if m.susp.verified && now-start >= m.susp.timeout(to, pr.health)+lag && !holding {
			// Only a suspicion this node has seen fail for itself ends
			// in a death: a member cut off from m (rightly suspecting
			// it from where it stands) cannot make a member that still
			// reaches m declare it dead. Nor does one end while this
			// node holds its verdicts (its timer waits).
			dead = s.toDeadLocked(m, now)
			m.loopSince = m.since
			break
		}
		// A suspicion heard and not yet verified here, in a cluster
		// probed by schedule, is checked late: at checkAt, when a
		// failed check still ends the timer on time. Every member
		// hears a suspicion, and checks at once would send the suspect
		// a probe from each of them within a few ticks, more than a
		// loaded node answers in time (its failed answers then verify
		// the suspicion everywhere); checked late, most members have
		// heard the refutation first, and the rest check at the times
		// they heard the suspicion, spread by its dissemination.
		lazy = !m.susp.own && !m.susp.verified && !m.pinned && !small
		checkAt := m.susp.start + int64(pr.stretch(to)) - int64(pr.stretch(cfg.ProbeTimeout)) - int64(cfg.Tick)
		// Probes off the schedule of a member not probed on its own
		// cadence are paid from the budget; with none left they wait
		// for a later tick (the timer waits for a failed probe of this
		// node's own).
		if m.probe == nil && (due || ((m.susp.own || !m.susp.verified || m.pinned || small) && now >= m.probeAt && (!lazy || now >= checkAt) &&
			(m.pinned || small || pr.spend(1)))) {
			// Picked by the schedule, this node's own suspicion, or one
			// heard and not yet verified here (probed every Interval):
			// the probe tells it that it is suspected, so that a live
			// member refutes; a failure confirms it, unless it only
			// checked a suspicion heard.
			m.probeAt = now + int64(cfg.Interval)
			m.checking = lazy && !due
			wantProbe = true
			if m.susp.own && !holding {
				seq = pr.suspectRoundLocked(m, own, now, lag)
			}
		}
	case StateDead:
		// The reprobe loop looks after dead members.
		m.probeNow = false
	}
	if probeDone {
		m.checking = false
	}
	if m.probeNow && m.state != StateDead {
		// A suspicion heard: see for itself and tell it (a suspect
		// member checked late, above, is left to that check). A check of
		// a suspect member that fails is no confirmation unless the
		// member is probed on its own cadence anyway (pinned, a small
		// cluster): a lossy link would shorten every timer.
		m.probeNow = false
		// An alive member of a cluster probed by schedule that this node
		// probed within the Interval is not probed again: the suspicion
		// is heard again each time a member passes it on, and every
		// member would probe its subject once a tick until the
		// dissemination ends.
		recent := m.state == StateAlive && !m.pinned && !small && m.probeSent != 0 && now-m.probeSent < int64(cfg.Interval)
		if m.probe == nil && !(m.state == StateSuspect && lazy) && !recent {
			if m.pinned || small || pr.spend(1) {
				wantProbe = true
				m.checking = m.state == StateSuspect
			} else {
				m.probeNow = true // paid at a later tick
			}
		}
	}
	v := m.viewLocked()
	sync, state := m.syncRFC, m.state
	m.syncRFC = false
	node := m.node
	keep := m.state == StateSuspect || m.fails > 0 || m.ackSeq != 0 || m.tellDied || m.pinned || m.probeNow || small
	s.mu.Unlock()

	if sync {
		switch state {
		case StateAlive:
			if known && info.State != rfc.PeerAlive {
				s.ep.MarkAlive(m.addr)
			}
		case StateSuspect:
			// Possibly dead, then alive, then suspect since the last
			// step: a dead mark left in the engine would fail this
			// node's probes of m at once, and a suspicion ends only
			// once one has failed in the network.
			if p, ok := s.ep.Peer(m.addr); ok && p.State == rfc.PeerDead {
				s.ep.MarkAlive(m.addr)
			}
			s.ep.MarkSuspect(m.addr)
		case StateDead:
			s.ep.MarkDead(m.addr)
		}
	}
	if dead.Kind != 0 {
		s.finishDeath(m, dead) // the calls have failed first
	}
	if wantProbe {
		if p, err := pr.goProbe(m.addr, v, cfg.Interval, lag); err == nil {
			m.probe = p
			m.probeHeld = holding
			m.probeSent = now
			m.probeEnd = now + int64(pr.stretch(cfg.ProbeTimeout)) + lag
		} else {
			s.stats.probes.Add(1)
			s.stats.probeFails.Add(1)
		}
	}
	if seq != 0 {
		pr.sendIndirect(seq, node, m.addr, v)
	}
	return keep || m.probe != nil || m.lateProbe != nil
}

// reap reports whether the probe call p of m has completed, without
// waiting. A completed call is released; if it succeeded (ok), its reply
// is taken by finishReply into *inc and *v.
func (pr *prober) reap(m *member, p *rfc.Pending, now int64, inc *uint32, v *view) (done, ok bool) {
	select {
	case <-p.Done():
	default:
		return false, false
	}
	if p.Err() == nil {
		ok = true
		*inc, *v = pr.finishReply(m, p, now)
	}
	p.Release()
	return true, ok
}

// finishReply takes what the reply to a probe of m says: its sender's
// node id if not known yet, the membership updates it carries, and the
// replier's incarnation and view of this node.
func (pr *prober) finishReply(m *member, p *rfc.Pending, now int64) (uint32, view) {
	pr.applyReply(m, p.Reply(), now)
	return probeReply(p.Reply())
}

// applyReply takes, under s.mu (Members and the handlers read the
// member meanwhile), the replier's node id if not known yet and the
// membership updates in the reply to a probe of m.
func (pr *prober) applyReply(m *member, r *wire.Packet, now int64) {
	var b []byte
	if r.NParams() == hbParamsUpd && r.Param(hbParamUpdates).Type == wire.TypeBytes {
		b = r.Param(hbParamUpdates).Bytes()
	}
	s := pr.s
	s.mu.Lock()
	s.adoptNodeLocked(m, r.Src) // first heard through its reply
	if !m.removed && len(b) > 0 {
		s.applyUpdatesLocked(m, b, now)
	}
	s.mu.Unlock()
}

// startRoundLocked opens an indirect round: its deadline, its sequence
// number, and the helpers (alive members other than m, chosen round-robin)
// left in pr.helpers.
func (pr *prober) startRoundLocked(m *member, now, lag int64) uint64 {
	s := pr.s
	m.roundStart = now
	m.roundEnd = now + int64(pr.stretch(s.cfg.RoundTimeout)) + lag
	seq := s.seq.Add(1)
	m.ackSeq = seq
	n := len(s.mu.order)
	for i := 0; i < n && len(pr.helpers) < s.cfg.IndirectProbes; i++ {
		h := s.mu.order[(s.mu.helper+i)%n]
		if h != m && !h.removed && h.state == StateAlive {
			pr.helpers = append(pr.helpers, h.addr)
		}
	}
	m.asked = append(m.asked[:0], pr.helpers...)
	if n > 0 {
		s.mu.helper = (s.mu.helper + 1) % n
	}
	return seq
}

// suspectRoundLocked opens an indirect round of m, suspect on this
// node's own evidence, beside the direct probe that tells m it is
// suspected (at the suspicion's start and then every Interval), and
// returns its sequence number (0: none opened). A member whose direct
// link to this node is broken is reached only through others: without
// these rounds, one round that ran late or lost a datagram would make it
// suspect here for good, its suspicion told only over that broken link
// (the members that reach it, having heard it within the Interval, do
// not adopt the suspicion, and so do not pass it on), and the timer would
// end in a death of a live member. The round's requests carry the
// suspicion, so a helper's probe tells m and m refutes it; a helper's
// ack that it reached m, for this round and at an incarnation at or above
// the suspected one (serveProbeAck), is a sign of life after the
// suspicion began and clears it here. A round that runs out changes
// nothing: the timer alone ends the suspicion, so a member really down
// is declared dead as before. Paid from the budget unless m is probed
// on its own cadence (own); refused, none is opened until the next.
func (pr *prober) suspectRoundLocked(m *member, own bool, now, lag int64) uint64 {
	if !own && !pr.spend(pr.s.cfg.IndirectProbes) {
		return 0
	}
	return pr.startRoundLocked(m, now, lag)
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
		if !pr.spendLow(1) {
			// No budget left: dropped unanswered. The asker's round
			// counts only acks that say reached; a probe this node
			// could not follow in time would say nothing better.
			s.stats.relayDropped.Add(1)
			continue
		}
		p, err := pr.goProbe(job.target, job.v, s.cfg.ProbeTimeout, pr.lag())
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

// checkQueue bounds the dead members heard alive that wait for the
// reprobe loop's check (Service.checkQ).
const checkQueue = 64

// reprobeLoop probes dead members every ReprobeInterval with
// rfc.Endpoint.Probe, the one call that reaches a peer the engine has
// marked dead: at most ProbesPerInterval per Interval of ReprobeInterval
// in one round, round-robin. It also probes at once a dead member heard
// alive from another member (Service.checkQ). A dead member that answers
// with a higher incarnation, or that learns from the probe that it was
// declared dead and refutes it, is alive again.
func (s *Service) reprobeLoop() {
	defer s.wg.Done()
	tk := time.NewTicker(s.cfg.ReprobeInterval)
	defer tk.Stop()
	var dead []reprobeTarget
	cursor := 0
	reprobeMax := s.cfg.ProbesPerInterval * max(1, int(s.cfg.ReprobeInterval/s.cfg.Interval))
	rp := &reprober{s: s, buf: make([]byte, s.ep.Config().MaxDatagram)}
	checks := 0 // checks of revivals heard since the last round
	for {
		select {
		case <-s.done:
			return
		case a := <-s.checkQ:
			s.mu.Lock()
			m := s.mu.members[a]
			ok := m != nil && m.state == StateDead
			var v view
			if ok {
				v = m.viewLocked()
			}
			s.mu.Unlock()
			if ok && checks < reprobeLimit(reprobeMax, int(s.stats.health.Load())) {
				// Past the limit the member waits for a round.
				checks++
				rp.probe(reprobeTarget{a, v})
			}
			continue
		case <-tk.C:
		}
		// At most reprobeMax dead members per round, round-robin from
		// where the last round stopped: the cost of reprobing stays that
		// of the probe schedule however many members are dead. A node at
		// local health h probes reprobeMax/(1+h)², as the budget for
		// failure-driven work falls (prober.cost), and as many checks of
		// revivals heard between two rounds.
		checks = 0
		limit := reprobeLimit(reprobeMax, int(s.stats.health.Load()))
		dead = dead[:0]
		s.mu.Lock()
		n := len(s.mu.order)
		for i := 0; i < n && len(dead) < limit; i++ {
			m := s.mu.order[(cursor+i)%n]
			if !m.removed && m.state == StateDead && (!m.learnt || m.heardNs != 0) {
				// A member added on another member's word and never
				// heard is not reprobed: an injected address would be
				// sent to for as long as the cluster runs.
				dead = append(dead, reprobeTarget{m.addr, m.viewLocked()})
			}
			if i == n-1 || len(dead) == limit {
				cursor = (cursor + i + 1) % n
			}
		}
		s.mu.Unlock()
		for _, t := range dead {
			select {
			case <-s.done:
				return
			default:
			}
			rp.probe(t)
		}
	}
}

// reprobeLimit is the dead members a reprobe round probes at local
// health h: most/(1+h)², at least one.
func reprobeLimit(most, h int) int {
	return max(1, most/((1+h)*(1+h)))
}

// reprobeTarget is a dead member the reprobe loop probes, with the view
// of it the probe carries.
type reprobeTarget struct {
	addr netip.AddrPort
	v    view
}

// reprober is the reprobe loop's scratch state.
type reprober struct {
	s   *Service
	ps  wire.Params
	buf []byte
	rep rfc.Reply
}

// probe probes dead member t once, waiting at most ProbeTimeout, and
// applies the reply.
func (rp *reprober) probe(t reprobeTarget) {
	s := rp.s
	heartbeatParams(&rp.ps, rp.buf, s.ep.Incarnation(), t.v, nil)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProbeTimeout)
	err := s.ep.Probe(ctx, t.addr, CallHeartbeat, &rp.ps, &rp.rep)
	cancel()
	if err != nil {
		return
	}
	inc, v := probeReply(&rp.rep.Packet)
	now := s.ep.Now()
	s.mu.Lock()
	if m := s.mu.members[t.addr]; m != nil {
		s.adoptNodeLocked(m, rp.rep.Src) // first heard through its reply
		s.observeLocked(m, inc, now)
		s.reviveUnrefutedLocked(m, t.v, inc, now)
		s.selfNewsLocked(m, v, now)
	}
	s.mu.Unlock()
}
