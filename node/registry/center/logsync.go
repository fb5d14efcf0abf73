package center

import (
	"sync"
	"time"

	"fastcall/wire"
)

// Group commit of the log (docs/REGISTRY.md, "Persistence"). Under
// FsyncAlways a write is acknowledged only once its frame is durable. One
// fsync covers every frame appended before it started, so writers that
// wait at the same time share it:
//
//   - syncTo(p) blocks until p is durable: if no fsync is running it runs
//     one itself, otherwise it waits for the running one and, if that did
//     not cover p, runs the next;
//   - requestSync wakes the log syncer (Center.logSyncLoop), which runs
//     an fsync at once without anybody blocking on it: a replica starts
//     its fsync this way as the center answers the replica;
//   - whenSynced(p, done) registers a callback that the fsync covering p
//     runs; registry.CallLogSync answers the other center from it, holding no
//     goroutine while the disk works.
//
// The first fsync (or write) that fails is sticky: the log refuses appends
// and every waiter gets the error until a snapshot has rewritten the
// whole store (snapshot, driven by the maintenance loop).

// syncWaiter is a callback waiting for a log position to be durable.
type syncWaiter struct {
	pos  logPos
	done func(err error)
}

// syncState is what is known to be on disk.
type syncState struct {
	sync.Mutex
	gen     uint64       // generation of synced
	synced  int64        // offset of generation gen known to be on disk
	err     error        // first fsync failure since the last snapshot
	closed  bool         // the log is closed: nothing more becomes durable
	waiters []syncWaiter // whenSynced callbacks; one per registry.CallLogSync running, bounded by the endpoint's deferred calls
}

// durableLocked reports whether p is on disk; l.wait is held. A position
// of an older generation is: the snapshot that replaced its log was
// synced.
func (l *logFile) durableLocked(p logPos) bool {
	return p.gen < l.wait.gen || (p.gen == l.wait.gen && p.off <= l.wait.synced)
}

// requestSync wakes the log syncer; it never blocks.
func (l *logFile) requestSync() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// settled reports whether the wait for p is over, and how: nil when p is
// durable, the sticky failure, or ECLOSED.
func (l *logFile) settled(p logPos) (bool, error) {
	l.wait.Lock()
	defer l.wait.Unlock()
	return l.settledLocked(p)
}

// settledLocked is settled with l.wait held.
func (l *logFile) settledLocked(p logPos) (bool, error) {
	switch {
	case l.durableLocked(p):
		return true, nil
	case l.wait.err != nil:
		return true, l.wait.err
	case l.wait.closed:
		return true, wire.ECLOSED
	}
	return false, nil
}

// syncTo makes the log durable up to p (a no-op unless the policy is
// FsyncAlways or p is the zero position). Writers that wait at the same
// time share fsyncs: one waiting for syncMu finds its position covered by
// the fsync that held it, or runs the next one for all that queued
// meanwhile.
func (l *logFile) syncTo(p logPos) error {
	if l.policy != FsyncAlways || p.gen == 0 {
		return nil
	}
	if done, err := l.settled(p); done {
		return err
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if done, err := l.settled(p); done {
		return err
	}
	// p was appended before this pass reads the end of the log: the
	// pass covers it.
	return l.syncPassLocked()
}

// whenSynced arranges for done to run once p is durable (err nil) or can
// no longer become so (the sticky failure, or ECLOSED). If that is known
// at once, whenSynced returns it with now set and done is not called;
// otherwise done runs later on the goroutine that ran the fsync, and must
// be quick.
func (l *logFile) whenSynced(p logPos, done func(err error)) (err error, now bool) {
	if l.policy != FsyncAlways || p.gen == 0 {
		return nil, true
	}
	l.wait.Lock()
	if over, err := l.settledLocked(p); over {
		l.wait.Unlock()
		return err, true
	}
	l.wait.waiters = append(l.wait.waiters, syncWaiter{pos: p, done: done})
	l.wait.Unlock()
	l.requestSync()
	return nil, false
}

// syncPassLocked fsyncs the log if some of it is not known to be durable;
// l.syncMu is held. It returns the sticky failure if there is one.
func (l *logFile) syncPassLocked() error {
	l.mu.Lock()
	f, end := l.mu.f, logPos{gen: l.mu.gen, off: l.mu.size}
	l.mu.Unlock()
	l.wait.Lock()
	durable, err := l.durableLocked(end), l.wait.err
	l.wait.Unlock()
	switch {
	case err != nil:
		return err
	case f == nil:
		return wire.ECLOSED
	case durable:
		// Nothing to write; a callback registered since the last fsync
		// may be covered by it.
		l.syncedUpTo(end, nil, false)
		return nil
	}
	err = l.syncFile(f)
	l.syncedUpTo(end, err, false)
	return err
}

// settledWaiter is a callback taken off the list and its outcome.
type settledWaiter struct {
	done func(err error)
	err  error
}

// syncedUpTo records the outcome of an fsync that covered the log up to
// p and runs the callbacks it settles. err is the fsync's (or a write's)
// failure, which becomes sticky; reset (a snapshot rewrote the store)
// clears a previous failure. Progress only moves forward, so callers need
// not be serialized; it takes l.wait, and runs the callbacks after
// releasing it.
func (l *logFile) syncedUpTo(p logPos, err error, reset bool) {
	var ready []settledWaiter
	l.wait.Lock()
	if reset {
		l.wait.err = nil
		l.failed.Store(false)
	}
	if err != nil && l.wait.err == nil {
		l.wait.err = err
		l.failed.Store(true)
	}
	if err == nil && (p.gen > l.wait.gen || (p.gen == l.wait.gen && p.off > l.wait.synced)) {
		l.wait.gen, l.wait.synced = p.gen, p.off
	}
	keep := l.wait.waiters[:0]
	for _, w := range l.wait.waiters {
		switch {
		case l.durableLocked(w.pos):
			ready = append(ready, settledWaiter{w.done, nil})
		case l.wait.err != nil:
			ready = append(ready, settledWaiter{w.done, l.wait.err})
		default:
			keep = append(keep, w)
		}
	}
	clear(l.wait.waiters[len(keep):])
	l.wait.waiters = keep
	l.wait.Unlock()
	for _, w := range ready {
		w.done(w.err)
	}
}

// shut marks the log closed and answers the waiters left with ECLOSED
// (the final sync of close answered those it covered).
func (l *logFile) shut() {
	l.wait.Lock()
	l.wait.closed = true
	left := l.wait.waiters
	l.wait.waiters = nil
	l.wait.Unlock()
	for _, w := range left {
		w.done(wire.ECLOSED)
	}
}

// syncLoop is the body of the log syncer: under FsyncAlways it fsyncs
// whenever woken (requestSync, whenSynced); under FsyncInterval every
// `every`. It returns when done is closed. failed is called when a pass
// meets a failure other than the last it met.
func (l *logFile) syncLoop(done <-chan struct{}, every time.Duration, failed func(err error)) {
	var tick <-chan time.Time
	if l.policy == FsyncInterval {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	var last error
	for {
		select {
		case <-done:
			return
		case <-l.kick:
			if l.policy != FsyncAlways {
				continue
			}
		case <-tick:
		}
		l.syncMu.Lock()
		err := l.syncPassLocked()
		l.syncMu.Unlock()
		if err != nil && err != last && err != wire.ECLOSED {
			failed(err)
		}
		last = err
	}
}
