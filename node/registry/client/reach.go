package client

import (
	"sync"
	"time"

	"fastcall/wire"
)

// OutageLogEvery bounds how often a Client logs that its centers do not
// answer: once per outage, and when outages follow each other closely, at
// most once per OutageLogEvery.
const OutageLogEvery = time.Minute

// reachEvent is what a change of the centers' reachability asks to log.
type reachEvent int

const (
	reachNone   reachEvent = iota
	reachDown              // no center answers (log at warn)
	reachBackUp            // a center answers again after a logged outage (log at info)
)

// reach follows whether the centers answer. An outage begins when the
// last call at every center went unanswered (timed out, or the center was
// declared dead) and ends at the first answer of any center, an error
// reply included: the center is there. Its methods are pure functions of
// the calls' outcomes and the times given, so they are table-tested.
type reach struct {
	mu struct {
		sync.Mutex
		silent   [2]bool   // by center: its last call went unanswered
		down     bool      // every center silent
		since    time.Time // the outage's start
		warned   bool      // this outage was logged
		lastWarn time.Time // the last outage logged; zero: none yet
	}
}

// unanswered reports whether e, the outcome of a call at a center, means
// the center did not answer; ok is false for an outcome that says nothing
// of the center (the caller gave up, or the endpoint is closed).
func unanswered(e wire.Errno) (silent, ok bool) {
	switch e {
	case wire.ETIMEDOUT, wire.ENODEAD:
		return true, true
	case wire.ECANCELED, wire.ECLOSED:
		return false, false
	}
	return false, true
}

// note records the outcome e of a call at center i of n at time now, and
// returns what to log and, for reachBackUp, how long the outage lasted.
func (r *reach) note(i, n int, e wire.Errno, now time.Time) (reachEvent, time.Duration) {
	silent, ok := unanswered(e)
	if !ok {
		return reachNone, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.silent[i] = silent
	if !silent {
		if !r.mu.down {
			return reachNone, 0
		}
		r.mu.down = false
		if !r.mu.warned {
			return reachNone, 0
		}
		r.mu.warned = false
		return reachBackUp, now.Sub(r.mu.since)
	}
	for j := 0; j < n; j++ {
		if !r.mu.silent[j] {
			return reachNone, 0
		}
	}
	if !r.mu.down {
		r.mu.down, r.mu.since = true, now
	}
	// Once per outage; an outage that began within OutageLogEvery of the
	// last one logged is logged once that much time has passed, if it
	// still lasts.
	if r.mu.warned || !r.mu.lastWarn.IsZero() && now.Sub(r.mu.lastWarn) < OutageLogEvery {
		return reachNone, 0
	}
	r.mu.warned, r.mu.lastWarn = true, now
	return reachDown, 0
}

// noteCall records the outcome err of a call at center i and logs a
// change of the centers' reachability.
func (c *Client) noteCall(i int, err error) {
	if c.cfg.Logger == nil {
		return
	}
	ev, d := c.reach.note(i, len(c.cfg.Centers), wire.AsErrno(err), time.Now())
	switch ev {
	case reachDown:
		c.cfg.Logger.Warn("registry: the centers do not answer; retrying", "centers", c.cfg.Centers, "err", err.Error())
	case reachBackUp:
		c.cfg.Logger.Info("registry: the centers answer again", "after", d.Round(time.Millisecond).String())
	}
}
