package sim

import (
	"net/netip"
	"sync"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
)

// span is a time interval on the trace clock; to < 0 while it lasts.
type span struct{ from, to time.Duration }

// overlaps reports whether s touches [a, b].
func (s span) overlaps(a, b time.Duration) bool {
	return s.from <= b && (s.to < 0 || s.to >= a)
}

// faultLog records the faults a schedule applied, so that the checkers
// can tell a justified verdict (a death after a crash) from a false one.
type faultLog struct {
	mu    sync.Mutex
	down  map[int][]span    // node crashed
	pause map[int][]span    // node paused
	cut   map[[2]int][]span // direction a -> b cut
}

func newFaultLog() *faultLog {
	return &faultLog{down: map[int][]span{}, pause: map[int][]span{}, cut: map[[2]int][]span{}}
}

func (l *faultLog) open(m map[int][]span, i int, now time.Duration) {
	l.mu.Lock()
	m[i] = append(m[i], span{now, -1})
	l.mu.Unlock()
}

func (l *faultLog) close(m map[int][]span, i int, now time.Duration) {
	l.mu.Lock()
	if s := m[i]; len(s) > 0 && s[len(s)-1].to < 0 {
		s[len(s)-1].to = now
	}
	l.mu.Unlock()
}

func (l *faultLog) openCut(a, b int, now time.Duration) {
	l.mu.Lock()
	l.cut[[2]int{a, b}] = append(l.cut[[2]int{a, b}], span{now, -1})
	l.mu.Unlock()
}

func (l *faultLog) closeCut(a, b int, now time.Duration) {
	l.mu.Lock()
	if s := l.cut[[2]int{a, b}]; len(s) > 0 && s[len(s)-1].to < 0 {
		s[len(s)-1].to = now
	}
	l.mu.Unlock()
}

// any reports whether some span of ss overlaps [a, b].
func anyOverlap(ss []span, a, b time.Duration) bool {
	for _, s := range ss {
		if s.overlaps(a, b) {
			return true
		}
	}
	return false
}

// silenced reports whether b could have gone unheard by a at some time
// in [from, to]: b crashed or paused, a paused, or a cut between them
// either way.
func (l *faultLog) silenced(a, b int, from, to time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return anyOverlap(l.down[b], from, to) || anyOverlap(l.pause[b], from, to) || anyOverlap(l.pause[a], from, to) ||
		anyOverlap(l.down[a], from, to) || anyOverlap(l.cut[[2]int{a, b}], from, to) || anyOverlap(l.cut[[2]int{b, a}], from, to)
}

// undisturbed reports whether node a was up and running, not paused,
// throughout [from, to].
func (l *faultLog) undisturbed(a int, from, to time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !anyOverlap(l.down[a], from, to) && !anyOverlap(l.pause[a], from, to)
}

// schedule is a seeded fault schedule over the nodes of a world. crash
// and restart are the world's: crash stops node i's processes (after
// the network has detached it), restart starts a new incarnation.
type schedule struct {
	net     *simnet.Network
	tr      *simnet.Trace
	rnd     *simnet.Rand
	addrs   []netip.AddrPort
	log     *faultLog
	crash   func(i int)
	restart func(i int, rnd *simnet.Rand)
	// maxDown bounds a crash, a pause or a partition.
	maxDown time.Duration
	// links draws a link fault model.
	links func(rnd *simnet.Rand) simnet.Faults
	// onCrash, if set, is told of a crash and how long it lasts, and may
	// ask for a check at a later time (it returns the delay and the
	// check; a nil check asks for none).
	onCrash func(i int, down time.Duration) (time.Duration, func())

	undos []undo
	busy  map[int]bool
}

// runAnyFaults runs the fault phase of a scenario that must hold under
// any fault (randomFaults on the links, crashes, pauses and partitions
// of up to 3 s) over the nodes at addrs, with the scenario's crash and
// restart, for -sim.time, then lifts every fault (schedule.run).
func runAnyFaults(net *simnet.Network, chk *checker, rnd *simnet.Rand, addrs []netip.AddrPort, crash, restart func(i int)) {
	s := &schedule{net: net, tr: chk.tr, rnd: rnd, addrs: addrs, log: newFaultLog(), maxDown: 3 * time.Second,
		links: randomFaults, crash: crash, restart: func(i int, _ *simnet.Rand) { restart(i) }}
	s.run(*flagTime, calm())
}

// undo is a fault to lift, or a check to run, at a time.
type undo struct {
	at time.Duration
	fn func()
}

func (s *schedule) later(d time.Duration, fn func()) {
	s.undos = append(s.undos, undo{s.tr.Since() + d, fn})
}

// settle lets every consequence of a fault at this instant play out
// before the next one, so that no datagram's fate depends on whether its
// sender ran before or after the fault changed.
func (s *schedule) settle() { synctest.Wait() }

// runDue runs every undo due by now, in the order they were asked for.
func (s *schedule) runDue(now time.Duration) {
	for k := 0; k < len(s.undos); {
		if s.undos[k].at <= now {
			fn := s.undos[k].fn
			s.undos = append(s.undos[:k], s.undos[k+1:]...)
			fn()
			s.settle()
			continue
		}
		k++
	}
}

func (s *schedule) pick() (int, int) {
	a := int(s.rnd.Below(uint64(len(s.addrs))))
	b := int(s.rnd.Below(uint64(len(s.addrs) - 1)))
	if b >= a {
		b++
	}
	return a, b
}

// run applies random faults for d, then lifts them all (every crashed
// node restarts, every pause and partition ends, links become calm) and
// returns.
func (s *schedule) run(d time.Duration, calm simnet.Faults) {
	s.busy = map[int]bool{}
	for s.tr.Since() < d {
		next := s.tr.Since() + 50*time.Millisecond + s.rnd.Dur(time.Second)
		for _, u := range s.undos {
			if u.at < next {
				next = u.at
			}
		}
		time.Sleep(next - s.tr.Since())
		s.runDue(s.tr.Since())
		if s.tr.Since() < next {
			continue
		}
		s.one()
		s.settle()
	}
	for len(s.undos) > 0 {
		at := s.undos[0].at
		for _, u := range s.undos {
			at = min(at, u.at)
		}
		time.Sleep(max(0, at-s.tr.Since()))
		s.runDue(s.tr.Since())
	}
	s.net.HealAll()
	s.net.SetDefault(calm)
	s.tr.Add("faults-end", noAddr, noAddr, "")
	s.settle()
}

// one applies one random fault.
func (s *schedule) one() {
	d := 10*time.Millisecond + s.rnd.Dur(s.maxDown)
	now := s.tr.Since()
	switch s.rnd.Below(8) {
	case 0:
		s.net.SetDefault(s.links(s.rnd))
	case 1:
		a, b := s.pick()
		s.net.SetFaults(s.addrs[a], s.addrs[b], s.links(s.rnd))
	case 2:
		a, b := s.pick()
		x, y := s.addrs[a], s.addrs[b]
		s.net.Cut(x, y)
		s.net.Cut(y, x)
		s.log.openCut(a, b, now)
		s.log.openCut(b, a, now)
		s.later(d, func() {
			s.net.Heal(x, y)
			s.net.Heal(y, x)
			s.log.closeCut(a, b, s.tr.Since())
			s.log.closeCut(b, a, s.tr.Since())
		})
	case 3:
		a, b := s.pick()
		x, y := s.addrs[a], s.addrs[b]
		s.net.Cut(x, y)
		s.log.openCut(a, b, now)
		s.later(d, func() { s.net.Heal(x, y); s.log.closeCut(a, b, s.tr.Since()) })
	case 4:
		a, _ := s.pick()
		if s.busy[a] {
			return
		}
		s.busy[a] = true
		x := s.addrs[a]
		s.net.Pause(x)
		s.log.open(s.log.pause, a, now)
		s.later(d, func() { s.net.Resume(x); s.log.close(s.log.pause, a, s.tr.Since()); s.busy[a] = false })
	case 5, 6:
		a, _ := s.pick()
		if s.busy[a] {
			return
		}
		s.busy[a] = true
		s.net.Crash(s.addrs[a])
		s.log.open(s.log.down, a, now)
		s.crash(a)
		crnd := s.rnd.Fork(uint64(a))
		if s.onCrash != nil {
			if at, check := s.onCrash(a, d); check != nil {
				s.later(at, check)
			}
		}
		s.later(d, func() { s.log.close(s.log.down, a, s.tr.Since()); s.restart(a, crnd); s.busy[a] = false })
	case 7:
		s.net.HealAll()
		s.log.mu.Lock()
		for k, ss := range s.log.cut {
			if len(ss) > 0 && ss[len(ss)-1].to < 0 {
				ss[len(ss)-1].to = now
			}
			s.log.cut[k] = ss
		}
		s.log.mu.Unlock()
	}
}

// rateDraw draws one fault rate of a link: with probability p, a rate
// of a whole number of percent below below; otherwise none.
type rateDraw struct {
	p     float64
	below uint64
}

func (d rateDraw) draw(rnd *simnet.Rand) (float64, bool) {
	if !rnd.Chance(d.p) {
		return 0, false
	}
	return float64(rnd.Below(d.below)) / 100, true
}

// linkBase bounds the base delay of every link a schedule draws.
const linkBase = 5 * time.Millisecond

// linkDraw bounds the fault model drawn for a link (a schedule's
// links): a base delay below linkBase and a jitter below jitter, then
// each rate in turn, reordering by up to reorderBy and a tail of up to
// tailLen. The draws come in one fixed order, so that a seed names the
// same faults for every scenario that uses the same bounds.
type linkDraw struct {
	jitter                            time.Duration
	loss, dup, reorder, corrupt, tail rateDraw
	reorderBy, tailLen                time.Duration
}

// maxDelay bounds a datagram's time on a link drawn within d.
func (d linkDraw) maxDelay() time.Duration { return linkBase + d.jitter + d.tailLen + d.reorderBy }

// draw draws a link's faults within d.
func (d linkDraw) draw(rnd *simnet.Rand) simnet.Faults {
	f := simnet.Faults{Delay: simnet.Dist{Base: rnd.Dur(linkBase), Jitter: rnd.Dur(d.jitter)}}
	if r, ok := d.loss.draw(rnd); ok {
		f.Loss = r
	}
	if r, ok := d.dup.draw(rnd); ok {
		f.Dup = r
	}
	if r, ok := d.reorder.draw(rnd); ok {
		f.Reorder = r
		f.ReorderBy = rnd.Dur(d.reorderBy)
	}
	if r, ok := d.corrupt.draw(rnd); ok {
		f.Corrupt = r
	}
	if r, ok := d.tail.draw(rnd); ok {
		f.Delay.TailP = r
		f.Delay.Tail = rnd.Dur(d.tailLen)
	}
	return f
}

// anyLinks bounds the links of the scenarios that must hold under any
// fault (RFC, Registry, Dispatch, Router): heavy loss, duplication,
// reordering, corruption and long tails.
var anyLinks = linkDraw{
	jitter: 10 * time.Millisecond,
	loss:   rateDraw{0.5, 40}, dup: rateDraw{0.4, 30}, reorder: rateDraw{0.4, 30}, corrupt: rateDraw{0.3, 10}, tail: rateDraw{0.3, 20},
	reorderBy: 100 * time.Millisecond, tailLen: 500 * time.Millisecond,
}

// hbLinkDraw bounds the links under which the heartbeat is meant to
// hold (hbLinks): moderate loss, short delays.
var hbLinkDraw = linkDraw{
	jitter: 5 * time.Millisecond,
	loss:   rateDraw{0.5, 11}, dup: rateDraw{0.3, 20}, reorder: rateDraw{0.3, 20}, corrupt: rateDraw{0.2, 5}, tail: rateDraw{0.3, 10},
	reorderBy: 30 * time.Millisecond, tailLen: 20 * time.Millisecond,
}

// randomFaults draws a fault model for a link of a scenario that must
// hold under any fault.
func randomFaults(rnd *simnet.Rand) simnet.Faults { return anyLinks.draw(rnd) }
