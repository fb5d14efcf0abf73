//go:build linux

package lock

import (
	"fmt"
	"testing"

	"fastcall/wire"
)

// One handle may hold exactly MaxReadHolds read holds: every one of them
// is granted, the next is refused ENOSPC without changing the count, and
// giving them all back leaves nothing held (no hold counted as stray).
// Another handle's slot has a count of its own.
func TestMaxReadHolds(t *testing.T) {
	a, b := twoHandles(t)
	for i := 0; i < MaxReadHolds; i++ {
		if err := a.RLock(); err != nil {
			t.Fatalf("hold %d of %d: %v", i+1, MaxReadHolds, err)
		}
	}
	if err := a.RLock(); wire.AsErrno(err) != wire.ENOSPC {
		t.Fatalf("hold past MaxReadHolds: got %v, want ENOSPC", err)
	}
	if err := a.RLockTimeout(0); wire.AsErrno(err) != wire.ENOSPC {
		t.Fatalf("timed hold past MaxReadHolds: got %v, want ENOSPC", err)
	}
	if s := a.Stats(); s.ReadHolds != MaxReadHolds || s.Readers != 1 {
		t.Fatalf("stats at the bound: %+v", s)
	}
	if err := b.RLockTimeout(0); err != nil {
		t.Fatalf("another handle beside a full one: %v", err)
	}
	b.RUnlock()
	for i := 0; i < MaxReadHolds; i++ {
		a.RUnlock()
	}
	if s := a.Stats(); s.ReadHolds != 0 || s.StrayUnlocks != 0 {
		t.Fatalf("stats after giving every hold back: %+v", s)
	}
	if err := b.LockTimeout(0); err != nil {
		t.Fatalf("writer after the holds left: %v", err)
	}
	b.Unlock()
}

// A reader whose last hold leaves while a writer drains wakes the writer:
// it bumps the drain sequence the writer sleeps on (and FUTEX_WAKEs it),
// so the writer does not sleep on until its liveness poll. That holds for
// an RUnlock and for the tentative hold of a reader that met the writer
// and gave way. The sequence is read, not the time the writer took.
func TestReaderLeavingWakesDrainer(t *testing.T) {
	a, w, c, res := drainingWriter(t)
	seq := a.drainSeq.Load()
	if err := c.RLockTimeout(0); wire.AsErrno(err) != wire.ETIMEDOUT {
		t.Fatalf("reader beside a draining writer: got %v, want ETIMEDOUT", err)
	}
	if got := a.drainSeq.Load(); got == seq {
		t.Fatal("a reader that gave way to the draining writer did not wake it")
	}
	seq = a.drainSeq.Load()
	a.RUnlock()
	if got := a.drainSeq.Load(); got == seq {
		t.Fatal("the last reader's RUnlock did not wake the draining writer")
	}
	if err := <-res; err != nil {
		t.Fatalf("writer: %v", err)
	}
	w.Unlock()
}

// A writer that waited for another writer (the slow path) also counts its
// acquisition in the write sequence: the sequence is what tells a
// reclaimer that stalled a dead writer's hold from the next one's. And a
// writer that waited for readers clears the draining bit once it holds
// the lock: the bit says it never returned from Lock, and a writer that
// dies with it set is reclaimed without the owner-died flag.
func TestSlowWriterState(t *testing.T) {
	a, b := twoHandles(t)
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- b.Lock() }()
	waitSleepers(t, a, 1)
	if a.state.Load()&stateWaiters == 0 {
		t.Fatal("a writer sleeps on the state word without the waiters bit: the release would not wake it")
	}
	a.Unlock()
	if err := <-res; err != nil {
		t.Fatalf("second writer: %v", err)
	}
	if s := a.Stats(); s.WriteSeq != 2 || s.Draining {
		t.Fatalf("after a writer behind a writer: %+v, want WriteSeq 2", s)
	}
	// The release woke every sleeper and cleared the waiters bit; none
	// sleeps now, so the next release has no one to wake.
	if a.state.Load()&stateWaiters != 0 {
		t.Fatal("waiters bit still set with no sleeper")
	}
	b.Unlock()

	if err := a.RLock(); err != nil {
		t.Fatal(err)
	}
	go func() { res <- b.Lock() }()
	waitDraining(t, a)
	a.RUnlock()
	if err := <-res; err != nil {
		t.Fatalf("writer behind a reader: %v", err)
	}
	if s := a.Stats(); s.Draining || !s.Writer || s.WriteSeq != 3 {
		t.Fatalf("writer that drained a reader: %+v, want Draining false, WriteSeq 3", s)
	}
	b.Unlock()
}

// ForceUnlock takes the claim of a writer that waits for readers: the
// writer starts over and returns holding the lock, told that the data may
// be half-written (the force set the owner-died flag); no other writer
// gets in beside it.
func TestForceUnlockRestartsDrainingWriter(t *testing.T) {
	a, w, c, res := drainingWriter(t)
	c.ForceUnlock()
	if err := <-res; wire.AsErrno(err) != wire.EOWNERDEAD {
		t.Fatalf("writer after ForceUnlock: got %v, want EOWNERDEAD", err)
	}
	if s := a.Stats(); !s.Writer || s.Draining {
		t.Fatalf("the writer returned without holding the lock: %+v", s)
	}
	if err := c.LockTimeout(0); wire.AsErrno(err) != wire.ETIMEDOUT {
		t.Fatalf("second writer beside the restarted one: got %v, want ETIMEDOUT", err)
	}
	w.MarkConsistent()
	w.Unlock()
	a.RUnlock() // its hold was dropped by the force: counted as stray
	if s := a.Stats(); s.StrayUnlocks != 1 || s.ForcedUnlocks != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// waitSleepers waits until at least n goroutines sleep on the lock.
func waitSleepers(t *testing.T, l *RWLock, n uint32) {
	t.Helper()
	waitUntil(t, func() bool { return l.Stats().Waiters >= n },
		func() string { return fmt.Sprintf("fewer than %d sleepers: %+v", n, l.Stats()) })
}

// drainingWriter returns three handles on a new lock once the second, w,
// waits in Lock for the read hold of the first, a, to leave; w's Lock
// returns its error on res. The third, c, holds nothing.
func drainingWriter(t *testing.T) (a, w, c *RWLock, res <-chan error) {
	t.Helper()
	mem, a := newRegion(t)
	w, c = attachT(t, mem), attachT(t, mem)
	if err := a.RLock(); err != nil {
		t.Fatal(err)
	}
	lockRes := make(chan error, 1)
	go func() { lockRes <- w.Lock() }()
	waitDraining(t, a)
	return a, w, c, lockRes
}

// waitDraining waits until a writer waits for the readers to leave.
func waitDraining(t *testing.T, l *RWLock) {
	t.Helper()
	waitUntil(t, func() bool { return l.Stats().Draining },
		func() string { return fmt.Sprintf("the writer never waited for the reader: %+v", l.Stats()) })
}

// A handle that holds the write lock cannot Detach: its slot names the
// writer, and a freed slot must never be named by the state word.
func TestDetachWhileWriting(t *testing.T) {
	a, b := twoHandles(t)
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := a.Detach(); wire.AsErrno(err) != wire.EBUSY {
		t.Fatalf("Detach holding the write lock: got %v, want EBUSY", err)
	}
	if err := b.LockTimeout(0); wire.AsErrno(err) != wire.ETIMEDOUT {
		t.Fatalf("second writer: got %v, want ETIMEDOUT", err)
	}
	a.Unlock()
	if err := a.Detach(); err != nil {
		t.Fatalf("Detach after Unlock: %v", err)
	}
}
