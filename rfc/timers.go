package rfc

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// timerEntry asks the timer goroutine to look at slot idx at time at, if
// the slot still holds call id.
type timerEntry struct {
	at  int64
	id  uint64
	idx int32
}

// timerHeap is a min-heap of timer entries. Entries of calls that finished
// are not removed at once; the timer goroutine discards them when they
// reach the top of the heap (their call id no longer matches). Bounded by
// MaxPending live entries plus one stale entry per call finished within
// the last MaxRTO. A push wakes the sleeping goroutine only when its entry
// comes due more than slack before the goroutine's own wake-up (wakeAt); a
// push while the goroutine is awake only tells it to look again before it
// sleeps. The reply to a sparse call sets the alarm back (settled), so
// that its stale entry does not wake the goroutine.
type timerHeap struct {
	mu      sync.Mutex
	h       []timerEntry
	wakeAt  int64         // (mu) when the timer goroutine wakes next; math.MaxInt64 while it is awake
	own     int64         // (mu) when it chose to wake before it slept (sleepingUntil), before any push armed the alarm earlier
	slack   int64         // how late an entry may fire rather than kick: the engine's tick with an alarm, else 0
	gap     int64         // how long after the last push that armed the alarm a push that arms it is sparse: MinRTO with an alarm
	earlyAt int64         // (mu) when a push last armed the alarm
	now     func() int64  // (mu) the engine's clock, for a push that arms the alarm; set by timerLoop before it first sleeps
	pushes  uint64        // (mu) entries pushed by callers so far
	wake    chan struct{} // cap 1: an entry came due before wakeAt (no alarm)
	alarm   *alarm        // what the timer goroutine sleeps on, if not on a runtime timer (alarm.go)
	slots   []Pending     // the endpoint's pending slots, whose live ids tell stale entries
	// The timer goroutine's own, and a sparse call's reply's under mu
	// (settled): pushes as it last saw them.
	seen uint64
	// The timer goroutine's own: when it last saw two or more new
	// pushes at once (linger).
	busyAt int64
	busy   bool // busyAt is set
	// Apart from the fields above, which callers' pushes write: every
	// reply loads sparse.
	_ [cacheLine]byte
	// The call id of the sparse call whose push armed the alarm for its
	// entry while the goroutine sleeps, else 0 (add, settled). Written
	// under mu.
	sparse atomic.Uint64
	_      [cacheLine - 8]byte // and off what follows in Endpoint
}

// cacheLine is the size of a processor's cache line, for keeping a field
// read on every reply off the line that every push writes.
const cacheLine = 64

func (t *timerHeap) init(n int) {
	t.h = make([]timerEntry, 0, n)
	t.wakeAt = math.MaxInt64
	t.wake = make(chan struct{}, 1)
}

// push adds a caller's entry; pushOwn adds one of the timer goroutine's
// own (a retransmission's next timer), which is not counted in pushes:
// a busy wake-up (linger) is about callers' pushes.
func (t *timerHeap) push(e timerEntry)    { t.add(e, 1) }
func (t *timerHeap) pushOwn(e timerEntry) { t.add(e, 0) }

func (t *timerHeap) add(e timerEntry, caller uint64) {
	t.mu.Lock()
	t.h = append(t.h, e)
	t.pushes += caller
	i := len(t.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if t.h[p].at <= t.h[i].at {
			break
		}
		t.h[p], t.h[i] = t.h[i], t.h[p]
		i = p
	}
	// Timers fire with a granularity of a tick (timerRound), so an
	// entry due less than a tick before the goroutine wakes waits for
	// that wake-up: retransmission timeouts vary with the RTT estimate,
	// and with many callers a push a little earlier than the top came
	// with every few calls.
	awake := t.wakeAt == math.MaxInt64
	early := !awake && e.at < t.wakeAt-t.slack
	if t.alarm == nil {
		t.mu.Unlock()
		if early || awake {
			t.kick()
		}
		return
	}
	if early {
		// A push that arms the alarm at least gap after the one
		// before is sparse: a reply before its entry's time sets the
		// alarm back (settled). Closer ones are a caller making calls
		// one after another, whose goroutine wakes at the entry's
		// time and lingers. sparse is stored before the call's
		// liveness is loaded, and a reply stores the liveness before
		// it loads sparse: either this push sees the call answered
		// (its entry is stale and need not wake anyone), or the reply
		// sees it sparse and sets the alarm back once this push has
		// armed it (under mu).
		now := t.now()
		id := e.id
		if now-t.earlyAt < t.gap {
			id = 0
		}
		t.earlyAt = now
		t.sparse.Store(id)
		if id != 0 && t.slots[e.idx].live.Load() != id {
			t.sparse.Store(0)
			t.mu.Unlock()
			return
		}
	}
	if awake || early {
		// Under mu: the goroutine reads the mark after sleepingUntil
		// (timerLoop), so it sees it. Awake, it looks again before it
		// sleeps and no system call is needed; asleep, the mark makes
		// it look again if it has not waited yet, and would otherwise
		// set the alarm after the arm below.
		t.alarm.mark()
	}
	if early {
		// Asleep: the alarm is armed for the entry's own time, not
		// fired at once. The goroutine wakes once, when the entry is
		// due, instead of at once to set the alarm for it and again
		// then; a sparse call answered by then costs it no wake-up.
		t.wakeAt = e.at
		t.alarm.armEarlier(e.at, time.Duration(e.at-t.now()))
	}
	t.mu.Unlock()
}

// sleepingUntil records, before the timer goroutine sleeps, when it
// wakes: a push of an earlier entry from now on kicks it (arms the alarm
// for the entry's time, where there is one).
func (t *timerHeap) sleepingUntil(at int64) {
	t.mu.Lock()
	t.wakeAt, t.own = at, at
	t.mu.Unlock()
}

// settled is told, by whoever delivered its reply, that call id
// completed. When the timer goroutine sleeps with the alarm armed for
// that call's entry by its sparse push (add), and no call still waiting
// needs it earlier, the alarm is set back to the goroutine's own wake-up
// (own): a sparse call answered before its first timer costs the
// goroutine no wake-up, where it would wake only to drop the entry. The
// call's push is then counted as seen: it kept the goroutine asleep, it
// is no sign of a busy caller (linger). With a call still waiting earlier
// the alarm stays as it is: the goroutine wakes, as before, at the
// finished call's time and sleeps until the waiting one's, which keeps
// callers that overlap from paying a system call per reply. Any other
// completion costs the one load of sparse (settled is inlined).
func (t *timerHeap) settled(id uint64) {
	if t.sparse.Load() == id {
		t.setBack(id)
	}
}

// setBack is settled for the call the alarm was armed for.
func (t *timerHeap) setBack(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sparse.Load() != id || t.wakeAt == math.MaxInt64 {
		return // the goroutine woke, or another push armed the alarm
	}
	t.sparse.Store(0)
	t.dropFinishedLocked()
	if len(t.h) > 0 && t.h[0].at < t.own-t.slack {
		return
	}
	// Under mu, which a push holds while it arms the alarm for an
	// earlier entry: such a push sees wakeAt = own and arms after
	// this. rearm does nothing if the alarm was set since the sparse
	// push armed it (a kick, the sleeper's own setting).
	if t.alarm.rearm(t.wakeAt, t.own, time.Duration(t.own-t.now())) {
		t.wakeAt = t.own
		t.seen = t.pushes
	}
}

// dropFinishedLocked drops the entries of calls that finished from the
// top of the heap, so that its top is the first call still waiting.
func (t *timerHeap) dropFinishedLocked() {
	for len(t.h) > 0 {
		e := t.h[0]
		if t.slots[e.idx].live.Load() == e.id {
			return
		}
		t.popDueLocked(e.at)
	}
}

// timerLinger is how many MinRTOs after its last busy wake-up the timer
// goroutine of a socket endpoint goes on waking at least once per MinRTO
// (linger) before it sleeps as long as its heap lets it. A wake-up is busy
// when it finds two or more timers pushed by callers since the one before:
// a sequential caller makes a call every few tens of microseconds and
// keeps it busy; a heartbeat member, which pushes one call every few
// hundred milliseconds and arms the alarm for it, finds one and does not
// linger.
const timerLinger = 2

// timerBusyPushes is how many callers' pushes since its previous wake-up
// make a wake-up of the timer goroutine busy (linger).
const timerBusyPushes = 2

// linger returns how long the timer goroutine of a socket endpoint
// sleeps at now when its next due entry is wait away: at most minRTO
// while its last busy wake-up was within the last timerLinger MinRTOs. A
// call's first timer is at least MinRTO after its push (a call's timeout
// shorter than that aside), so a goroutine that wakes within minRTO is
// never woken by a push (push kicks only for an entry due before wakeAt,
// less the slack). Without it a sequential caller would find the
// goroutine asleep until its sweep whenever the previous call's timer was
// dropped with no call in flight, and its push would arm the alarm: a
// timerfd_settime on the caller's path. One push per wake-up starts no
// linger: each such push costs that one system call, where lingering
// would cost a wake-up per MinRTO for timerLinger MinRTOs.
func (t *timerHeap) linger(now int64, wait, minRTO time.Duration) time.Duration {
	t.mu.Lock()
	if t.pushes-t.seen >= timerBusyPushes {
		t.busy, t.busyAt = true, now
	}
	t.seen = t.pushes
	t.mu.Unlock()
	if t.busy && now-t.busyAt < timerLinger*int64(minRTO) && wait > minRTO {
		return minRTO
	}
	return wait
}

// kick makes the timer goroutine look at the heap and the watched
// contexts again at once.
func (t *timerHeap) kick() {
	if t.alarm != nil {
		t.alarm.kick()
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// popDueLocked removes and returns the earliest entry if it is due.
func (t *timerHeap) popDueLocked(now int64) (timerEntry, bool) {
	if len(t.h) == 0 || t.h[0].at > now {
		return timerEntry{}, false
	}
	e := t.h[0]
	n := len(t.h) - 1
	t.h[0] = t.h[n]
	t.h = t.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && t.h[r].at < t.h[l].at {
			m = r
		}
		if t.h[i].at <= t.h[m].at {
			break
		}
		t.h[i], t.h[m] = t.h[m], t.h[i]
		i = m
	}
	return e, true
}

// timerLoop is the endpoint's timer goroutine: it retransmits calls whose
// timer expired, fails calls whose deadline passed, fails calls whose
// caller's context was cancelled (cancel.go), and sweeps idle peers from
// the peer table (sweepPeers). It sleeps on the endpoint's alarm when it
// has one, else on a runtime timer.
func (ep *Endpoint) timerLoop() {
	defer ep.wg.Done()
	var due [64]timerEntry
	sweepAt := ep.sweepEvery()
	if a := ep.timers.alarm; a != nil {
		ep.timers.mu.Lock()
		ep.timers.now = ep.Now
		ep.timers.mu.Unlock()
		for {
			wait, again := ep.timerRound(&due, &sweepAt)
			if again {
				continue
			}
			wait = ep.timers.linger(ep.Now(), wait, ep.cfg.MinRTO)
			ep.timers.sleepingUntil(ep.Now() + int64(wait))
			a.set(wait)
			if a.takeKick() {
				continue
			}
			if !a.wait() {
				return
			}
			a.takeKick()
			select {
			case <-ep.done:
				return
			default:
			}
		}
	}
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		wait, again := ep.timerRound(&due, &sweepAt)
		if again {
			continue
		}
		ep.timers.sleepingUntil(ep.Now() + int64(wait))
		tm.Reset(wait)
		select {
		case <-tm.C:
		case <-ep.timers.wake:
		case <-ep.done:
			return
		}
	}
}

// timerRound is one wake-up of the timer goroutine: it handles the due
// timers, the watched contexts and the peer sweep, and returns how long
// to sleep, or again when more timers may be due at once.
func (ep *Endpoint) timerRound(due *[64]timerEntry, sweepAt *int64) (wait time.Duration, again bool) {
	now := ep.Now()
	ep.timers.mu.Lock()
	ep.timers.wakeAt = math.MaxInt64 // awake: every push kicks until it sleeps again
	if ep.timers.sparse.Load() != 0 {
		ep.timers.sparse.Store(0)
	}
	n := 0
	for n < len(due) {
		e, ok := ep.timers.popDueLocked(now)
		if !ok {
			break
		}
		due[n] = e
		n++
	}
	// Entries of calls that finished are dropped from the top, so that
	// the goroutine sleeps until the first call still waiting needs
	// it, not until a finished call's timer.
	ep.timers.dropFinishedLocked()
	next := int64(-1)
	if len(ep.timers.h) > 0 {
		next = ep.timers.h[0].at
	}
	ep.timers.mu.Unlock()
	for i := 0; i < n; i++ {
		ep.expire(due[i], now)
	}
	if n == len(due) {
		return 0, true // more may be due
	}
	poll := ep.scanCancels()
	if now >= *sweepAt {
		ep.sweepPeers(now)
		*sweepAt = now + ep.sweepEvery()
	}
	// Timers fire with a granularity of tick: under load the first
	// waiting call changes all the time, and waking for each would cost
	// a goroutine switch per call.
	if next < 0 || next > *sweepAt {
		next = *sweepAt
	}
	wait = time.Duration(next - ep.Now())
	if wait < ep.tick {
		wait = ep.tick
	}
	if poll && wait > ep.pollEvery {
		wait = ep.pollEvery // callers' contexts under watch (cancel.go)
	}
	return wait, false
}

// expire handles one due timer: retransmit, or fail with ETIMEDOUT.
func (ep *Endpoint) expire(e timerEntry, now int64) {
	p := &ep.pending.slots[e.idx]
	p.mu.Lock()
	if p.mu.state != slotWaiting || p.mu.callID != e.id {
		p.mu.Unlock()
		return
	}
	if now >= p.mu.deadline {
		peer := p.mu.peer
		callNo := p.mu.callNo
		fn := p.completeLocked(errTimedOut)
		p.mu.Unlock()
		ep.stats.callOut(callNo).errs[errTimedOut].Add(1)
		ep.peerMissed(peer)
		p.finish(fn)
		return
	}
	if now-p.mu.sentAt >= maxBudget {
		// The callee holds what refuses a copy of the call for the
		// budget a copy carries, which saturates at maxBudget: a copy
		// sent later might run again. The call waits, unsent, for
		// its reply or its deadline.
		id, idx, at := p.mu.callID, p.idx, p.mu.deadline
		p.mu.Unlock()
		ep.timers.pushOwn(timerEntry{at: at, id: id, idx: idx})
		return
	}
	p.mu.rto = backoff(p.mu.rto, int64(ep.cfg.MaxRTO))
	p.mu.retrans++
	ep.sendBudgetLocked(p, now)
	at := now + p.mu.rto
	if at > p.mu.deadline {
		at = p.mu.deadline
	}
	id, idx, callNo := p.mu.callID, p.idx, p.mu.callNo
	p.mu.Unlock()
	ep.stats.callOut(callNo).retrans.Add(1)
	ep.timers.pushOwn(timerEntry{at: at, id: id, idx: idx})
}
