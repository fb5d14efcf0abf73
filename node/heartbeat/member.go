package heartbeat

import (
	"net/netip"
	"time"

	"fastcall/rfc"
)

// State is what a member believes of another member. The values travel
// on the wire (CallHeartbeat, CallProbeRequest, CallMembers); never
// renumber them.
type State uint8

const (
	StateAlive   State = 0 // heard recently, or its probes succeed
	StateSuspect State = 1 // an indirect round failed here or a suspicion was heard; dead when its timer expires
	StateDead    State = 2 // declared dead at an incarnation; alive again only above it
	stateLimit   State = 3
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	}
	return "?"
}

// MemberInfo is one member as a Service (or a CallMembers reply) sees it.
type MemberInfo struct {
	Addr        netip.AddrPort
	Node        uint32 // 0 until heard
	State       State
	Incarnation uint32        // highest heard; for a dead member, the one it was declared dead at
	HeardAgo    time.Duration // since the last sign of life; -1 if never heard
}

// member is one entry of the member list. Fields in the first group are
// guarded by Service.mu; fields in the second are owned by the probe loop
// and touched by no other goroutine.
type member struct {
	addr netip.AddrPort

	// Guarded by Service.mu.
	node     uint32
	state    State
	inc      uint32 // highest incarnation heard
	deadInc  uint32 // incarnation this node last declared it dead at (0: never); kept after it rejoins
	heardNs  int64  // last sign of life, engine clock; 0 = never
	rfcHeard int64  // last rfc LastHeardNs folded in
	since    int64  // engine clock of the last state change
	ackSeq   uint64 // sequence of the current indirect round; 0 = none
	susp     suspicion
	tellDied bool   // rejoined after death: probe it at once so it learns of the death
	heardSus uint32 // highest suspicion of this node heard from it and reported
	heardDie uint32 // highest death of this node heard from it and reported
	removed  bool
	syncRFC  bool // state changed outside the probe loop: tell the engine
	marking  bool // declared dead, MarkDead and EventDead not yet done: a revival waits
	pinned   bool // probed on its own cadence every Interval (a master/worker pair's channel)
	probeNow bool // probe at the next tick (a suspicion heard of a member heard recently)
	touched  bool // listed in Service.mu.touched for the probe loop

	// Guarded by Service.mu too. The helpers asked in the current
	// indirect round, the only members whose acks count (serveProbeAck).
	asked []netip.AddrPort
	// Added on the cluster's word (joinedLocked), not by this node's
	// configuration: never reprobed once dead unless heard before, and
	// evicted when the list is full (addMemberLocked).
	learnt bool
	// Dead here: the engine clock this node last asked the reprobe loop
	// to check it, on an alive update heard (revivalHeardLocked).
	checkAt int64

	// Owned by the probe loop.
	active     bool // in the loop's active list
	due        bool // picked by the probe schedule for this tick
	probe      *rfc.Pending
	probeAt    int64 // next point of the probe cadence
	loopSince  int64 // the since value the loop last acted on
	fails      int   // probes failed in a row (alive)
	roundStart int64 // start of the current indirect round
	roundEnd   int64 // end of the current indirect round
	checking   bool  // the probe in flight checks a suspicion heard: its failure confirms nothing
	probeHeld  bool  // the probe in flight was sent while this node held its verdicts (step): its failure counts for nothing

	probeEnd  int64        // engine clock at which the probe in flight has failed (ProbeTimeout)
	probeSent int64        // engine clock of the last probe sent (0: none)
	lateProbe *rfc.Pending // a failed probe's call, open until Interval after it was sent: its reply is still a sign of life
}

// releaseProbes releases the probe calls of m still open: the probe
// loop's, when it stops or finds m removed.
func (m *member) releaseProbes() {
	if m.probe != nil {
		m.probe.Release()
		m.probe = nil
	}
	if m.lateProbe != nil {
		m.lateProbe.Release()
		m.lateProbe = nil
	}
}

// suspicion is a suspect member's timer (Lifeguard): it runs from start
// for suspicionTimeout(n, conf), which shrinks as distinct observers
// confirm it. Guarded by Service.mu.
type suspicion struct {
	start      int64 // engine clock the suspicion began here (shifted past this node's own stalls)
	conf       int   // confirmations counted (maxConfirm: a death heard, the shortest timeout)
	own        bool  // this node's own indirect round failed: it probes the member every Interval, with a round beside each probe
	verified   bool  // own, or a probe of this node's own failed since the suspicion began: the timer may end it
	health     int   // the local health score when it began: the timer is stretched by no more (timeout)
	n          int   // observers recorded in confirmers
	confirmers [maxConfirm + 1]uint32
}

// timeout is the suspicion's timer, to stretched by the local health
// score (prober.stretch), but by no more than the score when the
// suspicion began. A refutation of a claim about this node raises the
// score (up to claimHealthMax); heard while a suspicion runs, it would
// otherwise lengthen that timer past DetectBoundAt (simulation Heartbeat
// seed 9760001). A node whose own ticks run late holds its verdicts
// instead (gauge).
func (p *suspicion) timeout(to time.Duration, health int) int64 {
	return int64(to) * int64(1+min(health, p.health))
}

// confirm records observer from (see observerID) and reports whether it
// is a new confirmation: 0 (unknown) and one already recorded are not.
func (p *suspicion) confirm(from uint32) bool {
	if from == 0 {
		return false
	}
	for _, c := range p.confirmers[:p.n] {
		if c == from {
			return false
		}
	}
	if p.n < len(p.confirmers) {
		p.confirmers[p.n] = from
		p.n++
	}
	if p.conf < maxConfirm {
		p.conf++
	}
	return true
}

// heardAgo returns the time since the member was last heard at engine
// clock now, -1 if never. Readers take now before the service lock, so a
// sign of life recorded while they waited for it is later than now: that
// is heard just now (0), not a negative age that reads as never heard.
func (m *member) heardAgo(now int64) time.Duration {
	if m.heardNs == 0 {
		return -1
	}
	if now < m.heardNs {
		return 0
	}
	return time.Duration(now - m.heardNs)
}

func (m *member) infoLocked(now int64) MemberInfo {
	inc := m.inc
	if m.state == StateDead {
		inc = m.deadInc
	}
	return MemberInfo{Addr: m.addr, Node: m.node, State: m.state, Incarnation: inc, HeardAgo: m.heardAgo(now)}
}

// view is what one member tells another about the other, in every
// heartbeat: its state, the incarnation the state refers to, and the
// incarnation it last declared the other dead at (0: never).
type view struct {
	state State
	inc   uint32
	died  uint32
}

// viewLocked returns what this node tells m about m.
func (m *member) viewLocked() view {
	if m.state == StateDead {
		return view{StateDead, m.deadInc, m.deadInc}
	}
	return view{m.state, m.inc, m.deadInc}
}
