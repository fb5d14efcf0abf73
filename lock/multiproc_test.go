//go:build linux

package lock

// Multi-process tests. The test binary re-executes itself (lock/proctest):
// TestMain runs a child role instead of the tests. Parent and children
// share a file mapped MAP_SHARED: the lock in its first Size bytes, then a
// data page with the words below.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

const (
	envFile  = "FASTCALL_LOCK_TEST_FILE"  // shared file path
	envIters = "FASTCALL_LOCK_TEST_ITERS" // iterations per goroutine (stress)

	// Data page words, after the lock.
	offDataX     = Size + 0  // u64 moved together with offDataY under the write lock
	offDataY     = Size + 8  // u64
	offDataReady = Size + 16 // u64 set by a child once it holds what it was asked to
	offDataStop  = Size + 24 // u64 set by the parent to tell children to finish
	offDataBad   = Size + 32 // u64 invariant violations seen by children
	offDataOps   = Size + 40 // u64 operations the churn children completed
	sharedSize   = Size + 4096

	stressGoroutines = 4 // goroutines per process in the stress test
	stressWriteEvery = 4 // one write in this many operations

	childDeadline = 20 * time.Second // a child never outlives this
	waitDeadline  = 10 * time.Second // the parent's bound on any wait for a child
)

func TestMain(m *testing.M) {
	roles := map[string]func() int{}
	for _, role := range []string{"stress", "holdwrite", "holdread", "holdreadexec", "lockwait", "sleep", "hammer", "halfwrite", "churn"} {
		roles[role] = func() int { return runChild(role) }
	}
	proctest.Main(m, roles)
}

// mapShared maps path (created with sharedSize bytes if missing) MAP_SHARED.
func mapShared(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, sharedSize); err != nil {
		return nil, err
	}
	return unix.Mmap(fd, 0, sharedSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

// newShared creates a shared file in a temporary directory, formats the lock
// and returns the mapping, the parent's handle and the path.
func newShared(t testing.TB) ([]byte, *RWLock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lock")
	mem, err := mapShared(path)
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	l, err := Init(mem)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return mem, l, path
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	done   chan struct{}
	err    error
	waited bool
}

// startChild runs the test binary in role on the shared file. The child is
// killed and reaped when the test ends.
func startChild(t testing.TB, role, path string, env ...string) *child {
	t.Helper()
	c := &child{done: make(chan struct{})}
	c.cmd = proctest.Command(role, append([]string{envFile + "=" + path}, env...)...)
	c.cmd.Stdout = &c.out
	c.cmd.Stderr = &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", role, err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.wait()
	})
	return c
}

// wait reaps the child once and returns its exit error.
func (c *child) wait() error {
	if !c.waited {
		c.waited = true
		c.err = c.cmd.Wait()
	}
	return c.err
}

// deadHolder runs the child role (holdread or holdwrite) on a new shared
// lock, waits until it holds the lock and kills it: the lock is left with
// a dead process's hold.
func deadHolder(t testing.TB, role string) ([]byte, *RWLock, string) {
	t.Helper()
	mem, l, path := newShared(t)
	c := startChild(t, role, path)
	waitWord(t, mem, offDataReady, 1)
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.wait()
	return mem, l, path
}

// waitUntil polls cond every millisecond until it holds. Past
// waitDeadline it fails the test with what(), called then, so that the
// message shows the state the wait ran out on.
func waitUntil(t testing.TB, cond func() bool, what func() string) {
	t.Helper()
	end := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatal(what())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitWord polls a data word until it equals want or waitDeadline passes.
func waitWord(t testing.TB, mem []byte, off int, want uint64) {
	t.Helper()
	waitUntil(t, func() bool { return word64(mem, off).Load() == want },
		func() string { return fmt.Sprintf("word at %d never became %d", off, want) })
}

// pollsFor is how long a test waits for a lock whose holder is planted:
// a few liveness polls when the holder must be judged alive (the wait
// times out, whatever the load), the whole waitDeadline when it must be
// judged dead (on a loaded host a poll may come late).
func pollsFor(want wire.Errno) time.Duration {
	if want == wire.ETIMEDOUT {
		return 4 * LivenessPoll
	}
	return waitDeadline
}

// runChild is the body of a child process; its result is the exit status.
func runChild(role string) int {
	time.AfterFunc(childDeadline, func() {
		fmt.Fprintln(os.Stderr, "child deadline")
		os.Exit(3)
	})
	mem, err := mapShared(os.Getenv(envFile))
	if err != nil {
		fmt.Fprintln(os.Stderr, "map:", err)
		return 2
	}
	l, err := Attach(mem)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attach:", err)
		return 2
	}
	stop := word64(mem, offDataStop)
	ready := word64(mem, offDataReady)
	switch role {
	case "stress":
		iters, _ := strconv.Atoi(os.Getenv(envIters))
		if bad := stress(l, mem, iters); bad != 0 {
			fmt.Fprintln(os.Stderr, "invariant broken", bad, "times")
			return 1
		}
		return 0
	case "holdwrite", "holdread":
		if role == "holdwrite" {
			err = l.Lock()
		} else {
			err = l.RLock()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, role, err)
			return 1
		}
		ready.Store(1)
		for stop.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		if role == "holdwrite" {
			l.Unlock()
		} else {
			l.RUnlock()
		}
		return 0
	case "holdreadexec":
		return holdReadExec(l, ready)
	case "halfwrite":
		// Move X, announce, and move Y only when told: a reader that
		// gets in meanwhile sees the two words differ.
		if err := l.Lock(); err != nil {
			fmt.Fprintln(os.Stderr, role, err)
			return 1
		}
		x := word64(mem, offDataX)
		x.Store(x.Load() + 1)
		ready.Store(1)
		for stop.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		y := word64(mem, offDataY)
		y.Store(y.Load() + 1)
		l.Unlock()
		return 0
	case "lockwait":
		// Announce, then block in Lock (the test kills us while we drain).
		ready.Store(1)
		l.Lock()
		ready.Store(2)
		for stop.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		return 0
	case "sleep":
		// Announce: the program runs, so the kernel is done with exec
		// (exec_test.go reads the start of the stack after this).
		ready.Store(1)
		for stop.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		return 0
	case "churn":
		return churn(l, mem)
	case "hammer":
		ready.Store(1)
		for i := 0; stop.Load() == 0; i++ {
			if i%8 == 0 {
				l.Lock()
				l.Unlock()
			} else {
				l.RLock()
				l.RUnlock()
			}
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

// stress runs stressGoroutines goroutines of iters operations each: every
// stressWriteEvery-th moves both data words under the write lock, the rest
// check under the read lock that they are equal. It returns the number of
// violations seen.
func stress(l *RWLock, mem []byte, iters int) uint64 {
	x, y := word64(mem, offDataX), word64(mem, offDataY)
	var bad atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < stressGoroutines; g++ {
		wg.Go(func() {
			for i := 0; i < iters; i++ {
				if ok, _ := pairOp(l, x, y, i%stressWriteEvery == 0, i%8 == 1); !ok {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	word64(mem, offDataBad).Add(bad.Load())
	return bad.Load()
}

// Test 1: several processes times several goroutines.
func TestMultiProcessStress(t *testing.T) {
	const children, iters = 3, 1000
	mem, l, path := newShared(t)
	var cs []*child
	for i := 0; i < children; i++ {
		cs = append(cs, startChild(t, "stress", path, envIters+"="+strconv.Itoa(iters)))
	}
	bad := stress(l, mem, iters)
	for i, c := range cs {
		if err := c.wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, c.out.String())
		}
	}
	writesPerGoroutine := uint64((iters + stressWriteEvery - 1) / stressWriteEvery)
	want := uint64(children+1) * stressGoroutines * writesPerGoroutine
	x, y := word64(mem, offDataX).Load(), word64(mem, offDataY).Load()
	if bad != 0 || word64(mem, offDataBad).Load() != 0 || x != want || y != want {
		t.Fatalf("bad=%d shared bad=%d x=%d y=%d want %d", bad, word64(mem, offDataBad).Load(), x, y, want)
	}
	if s := l.Stats(); s.ReadHolds != 0 || s.Writer || s.ReclaimedWriters != 0 || s.StrayUnlocks != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// A writer in another process stops in the middle of an update of two
// words. No reader may get in until it released: a try fails, and a
// blocking RLock goes to sleep and, once woken, sees both words moved. The
// test waits for events only (the reader asleep, the reader back), so a
// reader that gets in beside the writer fails it on every run.
func TestReaderWaitsForWriterInAnotherProcess(t *testing.T) {
	mem, l, path := newShared(t)
	c := startChild(t, "halfwrite", path)
	waitWord(t, mem, offDataReady, 1)
	x, y := word64(mem, offDataX), word64(mem, offDataY)
	if err := l.RLockTimeout(0); wire.AsErrno(err) != wire.ETIMEDOUT {
		if err == nil {
			t.Errorf("try saw x=%d y=%d", x.Load(), y.Load())
			l.RUnlock()
		}
		t.Fatalf("RLockTimeout(0) beside a writer: got %v, want ETIMEDOUT", err)
	}
	type seen struct {
		err  error
		x, y uint64
	}
	res := make(chan seen, 1)
	go func() {
		err := l.RLock()
		s := seen{err: err, x: x.Load(), y: y.Load()}
		if err == nil {
			l.RUnlock()
		}
		res <- s
	}()
	end := time.Now().Add(waitDeadline)
	for l.Stats().Waiters == 0 {
		select {
		case s := <-res:
			t.Fatalf("RLock returned while a writer held the lock: %v, x=%d y=%d", s.err, s.x, s.y)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("the reader never slept on the writer: %+v", l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	word64(mem, offDataStop).Store(1)
	s := <-res
	if s.err != nil || s.x != 1 || s.y != 1 {
		t.Fatalf("reader after the writer left: %v, x=%d y=%d, want x=y=1", s.err, s.x, s.y)
	}
	if err := c.wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.out.String())
	}
	if st := l.Stats(); st.ReadHolds != 0 || st.Writer || st.ReclaimedWriters != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// Test 2: a child dies holding the write lock; waiters in this process get
// in before their timeout and the writer sees EOWNERDEAD.
func TestDeadWriter(t *testing.T) {
	const timeout = 5 * time.Second
	mem, l, path := newShared(t)
	c := startChild(t, "holdwrite", path)
	waitWord(t, mem, offDataReady, 1)

	readerHandle := attachT(t, mem)
	type result struct {
		err     error
		elapsed time.Duration
	}
	wres, rres := make(chan result, 1), make(chan result, 1)
	start := time.Now()
	go func() {
		err := l.LockTimeout(timeout)
		wres <- result{err, time.Since(start)}
	}()
	go func() {
		err := readerHandle.RLockTimeout(timeout)
		elapsed := time.Since(start)
		if err == nil {
			readerHandle.RUnlock()
		}
		rres <- result{err, elapsed}
	}()
	// Both sleep on the live holder before it dies.
	waitUntil(t, func() bool { return l.Stats().Waiters >= 2 },
		func() string { return fmt.Sprintf("the waiters never slept on the holder: %+v", l.Stats()) })
	c.cmd.Process.Signal(syscall.SIGKILL)
	// Not reaped yet: the holder is a zombie, and must count as dead.

	// Each got in before its timeout (which would have ended it
	// ETIMEDOUT); how long it took is not asserted.
	w := <-wres
	if wire.AsErrno(w.err) != wire.EOWNERDEAD {
		t.Fatalf("writer: %v after %v, want EOWNERDEAD", w.err, w.elapsed)
	}
	if !l.NeedsRepair() {
		t.Fatal("owner-died flag not set")
	}
	l.MarkConsistent()
	l.Unlock()
	r := <-rres
	if r.err != nil {
		t.Fatalf("reader: %v after %v", r.err, r.elapsed)
	}
	if s := l.Stats(); s.ReclaimedWriters != 1 || s.Writer {
		t.Fatalf("stats: %+v", s)
	}
	if err := l.LockTimeout(timeout); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	l.Unlock()
}

// Test 2b: readers get in past a dead writer and leave the flag for the
// next writer.
func TestDeadWriterReaderFirst(t *testing.T) {
	_, l, _ := deadHolder(t, "holdwrite")
	if err := l.RLockTimeout(5 * time.Second); err != nil {
		t.Fatalf("reader: %v", err)
	}
	if !l.NeedsRepair() {
		t.Fatal("flag cleared by a reader")
	}
	l.RUnlock()
	if err := l.LockTimeout(5 * time.Second); wire.AsErrno(err) != wire.EOWNERDEAD {
		t.Fatalf("writer: got %v, want EOWNERDEAD", err)
	}
	l.Unlock() // no MarkConsistent: the next writer is told again
	if err := l.LockTimeout(0); wire.AsErrno(err) != wire.EOWNERDEAD {
		t.Fatalf("second writer: got %v, want EOWNERDEAD", err)
	}
	l.Unlock()
}

// Test 3: a child dies holding a read lock; a writer gets in, and the
// owner-died flag stays clear (readers change nothing).
func TestDeadReader(t *testing.T) {
	const timeout = 5 * time.Second
	mem, l, path := newShared(t)
	c := startChild(t, "holdread", path)
	waitWord(t, mem, offDataReady, 1)
	c.cmd.Process.Signal(syscall.SIGKILL)
	start := time.Now()
	if err := l.LockTimeout(timeout); err != nil {
		t.Fatalf("writer: %v after %v", err, time.Since(start))
	}
	l.Unlock()
	if s := l.Stats(); s.ReclaimedReadHolds != 1 || s.ReclaimedSlots != 1 || s.OwnerDied {
		t.Fatalf("stats: %+v", s)
	}
}

// A writer killed while it waits for readers never returned from Lock: its
// claim is cleared without the owner-died flag.
func TestDeadDrainingWriter(t *testing.T) {
	mem, l, path := newShared(t)
	if err := l.RLock(); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "lockwait", path)
	waitWord(t, mem, offDataReady, 1)
	waitUntil(t, func() bool { return l.Stats().Draining }, func() string { return "child never started draining" })
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.wait()
	l.RUnlock()
	if err := l.LockTimeout(5 * time.Second); err != nil {
		t.Fatalf("writer after a dead draining writer: %v", err)
	}
	l.Unlock()
	if s := l.Stats(); s.OwnerDied || s.ReclaimedWriters != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// Test 4: live holders past the timeout: ETIMEDOUT, nothing reclaimed.
func TestLiveHolderTimeout(t *testing.T) {
	const timeout = 5 * LivenessPoll // several liveness checks happen
	for _, role := range []string{"holdwrite", "holdread"} {
		t.Run(role, func(t *testing.T) {
			mem, l, path := newShared(t)
			c := startChild(t, role, path)
			waitWord(t, mem, offDataReady, 1)
			if err := l.LockTimeout(timeout); wire.AsErrno(err) != wire.ETIMEDOUT {
				t.Fatalf("LockTimeout: got %v, want ETIMEDOUT", err)
			}
			err := l.RLockTimeout(timeout)
			if role == "holdwrite" && wire.AsErrno(err) != wire.ETIMEDOUT {
				t.Fatalf("RLockTimeout: got %v, want ETIMEDOUT", err)
			}
			if role == "holdread" {
				if err != nil {
					t.Fatalf("RLockTimeout beside a reader: %v (the timed-out writer must give up its claim)", err)
				}
				l.RUnlock()
			}
			s := l.Stats()
			if s.ReclaimedWriters != 0 || s.ReclaimedReadHolds != 0 || s.ReclaimedSlots != 0 || s.OwnerDied {
				t.Fatalf("something was reclaimed from a live holder: %+v", s)
			}
			if role == "holdwrite" && s.WriterPID != c.cmd.Process.Pid {
				t.Fatalf("writer pid %d, want %d", s.WriterPID, c.cmd.Process.Pid)
			}
			word64(mem, offDataStop).Store(1)
			if err := l.LockTimeout(waitDeadline); err != nil {
				t.Fatalf("after release: %v", err)
			}
			l.Unlock()
			if err := c.wait(); err != nil {
				t.Fatalf("child: %v\n%s", err, c.out.String())
			}
		})
	}
}

// plantHolder writes a holder record into a free slot i by hand, as a
// process with pid and start would have: read holds in its slot, and with
// writer, the state word naming it.
func plantHolder(mem []byte, i, pid int, start uint64, reads uint64, writer bool) {
	l := &RWLock{mem: mem}
	word64(mem, headerSize+i*slotSize+slotOffStart).Store(start)
	l.slotWord(i).Store(1<<slotGenShift | slotActive | uint64(pid) | reads<<slotCountShift)
	for {
		h := word32(mem, offHighWater).Load()
		if h > uint32(i) || word32(mem, offHighWater).CompareAndSwap(h, uint32(i+1)) {
			break
		}
	}
	if writer {
		st := word32(mem, offState)
		st.Store((st.Load() + stateSeqOne) | uint32(i+1))
	}
}

// Test 5: a pid reused by an unrelated process is not taken for the holder.
// A live process (a sleeping child) is recorded with a wrong start time: it
// is treated as dead and reclaimed. With the right start time it is not.
func TestPidReuse(t *testing.T) {
	const slot = slotCount - 1 // far from the slots the handles take
	tests := []struct {
		name       string
		writer     bool
		rightStart bool
		want       wire.Errno
	}{
		{"writer wrong start", true, false, wire.EOWNERDEAD},
		{"writer right start", true, true, wire.ETIMEDOUT},
		{"reader wrong start", false, false, wire.OK},
		{"reader right start", false, true, wire.ETIMEDOUT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem, l, path := newShared(t)
			c := startChild(t, "sleep", path)
			pid := c.cmd.Process.Pid
			st, e := readStat("/proc/" + strconv.Itoa(pid) + "/stat")
			start := st.start
			if e != wire.OK || !st.alive {
				t.Fatalf("stat of child: %v", e)
			}
			if !tc.rightStart {
				start++
			}
			reads := uint64(0)
			if !tc.writer {
				reads = 2
			}
			plantHolder(mem, slot, pid, start, reads, tc.writer)
			err := l.LockTimeout(pollsFor(tc.want))
			if got := wire.AsErrno(err); got != tc.want {
				t.Fatalf("LockTimeout: got %v, want %v", got, tc.want)
			}
			s := l.Stats()
			if tc.rightStart {
				if s.ReclaimedWriters+s.ReclaimedReadHolds+s.ReclaimedSlots != 0 {
					t.Fatalf("live holder reclaimed: %+v", s)
				}
				return
			}
			l.Unlock()
			if s.ReclaimedSlots != 1 || (tc.writer && s.ReclaimedWriters != 1) || (!tc.writer && s.ReclaimedReadHolds != reads) {
				t.Fatalf("stats: %+v", s)
			}
			if w := l.slotWord(slot).Load(); w&^slotGenMask != 0 {
				t.Fatalf("slot not freed: %#x", w)
			}
		})
	}
}

// A holder whose process is gone (pid reaped) is reclaimed by pid alone.
func TestReapedHolder(t *testing.T) {
	mem, l, path := newShared(t)
	c := startChild(t, "sleep", path)
	pid := c.cmd.Process.Pid
	st, _ := readStat("/proc/" + strconv.Itoa(pid) + "/stat")
	start := st.start
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.wait()
	plantHolder(mem, 5, pid, start, 1, true)
	if err := l.LockTimeout(waitDeadline); wire.AsErrno(err) != wire.EOWNERDEAD {
		t.Fatalf("got %v, want EOWNERDEAD", err)
	}
	l.Unlock()
}

// A full slot table is cleared of dead processes' slots on Attach.
func TestAttachReclaimsDeadSlots(t *testing.T) {
	mem, l, path := newShared(t)
	var hs []*RWLock
	for i := 1; i < Slots-1; i++ {
		hs = append(hs, attachT(t, mem))
	}
	c := startChild(t, "sleep", path) // takes the last slot, then dies
	waitUntil(t, func() bool { return l.Stats().SlotsInUse == Slots },
		func() string { return fmt.Sprintf("child never attached: %+v", l.Stats()) })
	if _, err := Attach(mem); wire.AsErrno(err) != wire.ENOSPC {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.wait()
	if _, err := Attach(mem); err != nil {
		t.Fatalf("attach after the child died: %v", err)
	}
	_ = hs
}

// startHammer starts a child that takes and drops the lock in a loop (one
// write in eight operations) until stop is called.
func startHammer(tb testing.TB) (mem []byte, l *RWLock, stop func()) {
	mem, l, path := newShared(tb)
	c := startChild(tb, "hammer", path)
	waitWord(tb, mem, offDataReady, 1)
	return mem, l, func() {
		word64(mem, offDataStop).Store(1)
		if err := c.wait(); err != nil {
			tb.Errorf("hammer: %v\n%s", err, c.out.String())
		}
	}
}

// churnGoroutines is the goroutines per churn child.
const churnGoroutines = 2

// churn runs churnGoroutines goroutines until the stop word is set: one
// operation in stressWriteEvery moves both data words under the write
// lock, every third operation waits at most LivenessPoll (a timed-out
// drainer gives its claim up) (after repairing them, Y = X, when told a writer died), the rest
// check under the read lock that they are equal unless a dead writer's
// repair is pending. Violations go to the bad word, completed operations
// to the ops word.
func churn(l *RWLock, mem []byte) int {
	x, y := word64(mem, offDataX), word64(mem, offDataY)
	stop, bad, ops := word64(mem, offDataStop), word64(mem, offDataBad), word64(mem, offDataOps)
	fail := make(chan error, churnGoroutines)
	var wg sync.WaitGroup
	for g := 0; g < churnGoroutines; g++ {
		wg.Go(func() {
			for i := g; stop.Load() == 0; i++ {
				write := i%stressWriteEvery == 0
				err := churnTake(l, write, i%3 == 0)
				if err == wire.ETIMEDOUT {
					continue
				}
				if err == wire.EOWNERDEAD {
					y.Store(x.Load()) // a writer died between the two
					l.MarkConsistent()
				} else if err != nil {
					fail <- err
					return
				}
				if write {
					x.Store(x.Load() + 1)
					runtime.Gosched()
					y.Store(y.Load() + 1)
					l.Unlock()
				} else {
					if !l.NeedsRepair() && x.Load() != y.Load() {
						bad.Add(1)
					}
					l.RUnlock()
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-fail:
		fmt.Fprintln(os.Stderr, "churn:", err)
		return 1
	default:
	}
	return 0
}

// churnTake takes the write (write) or a read hold, waiting at most
// LivenessPoll if timed.
func churnTake(l *RWLock, write, timed bool) error {
	switch {
	case write && timed:
		return l.LockTimeout(LivenessPoll)
	case write:
		return l.Lock()
	case timed:
		return l.RLockTimeout(LivenessPoll)
	}
	return l.RLock()
}

// TestKillChurn: churnChildren processes of readers and writers while
// this one kills one of them, at whatever point of acquiring, holding or
// releasing it is (or of reclaiming another dead one's holds), and starts
// another in its place, churnKills times: more than the lock has slots, so
// Attach must reclaim dead processes' slots too. After every kill the
// survivors must go on (a dead holder must wedge nobody); at the end every
// child stops by itself, no reader saw a half-done write that was not
// flagged, and the words agree after a repair.
func TestKillChurn(t *testing.T) {
	const churnChildren, churnKills, opsPerKill = 4, Slots + 8, 32
	mem, l, path := newShared(t)
	ops := word64(mem, offDataOps)
	var cs []*child
	for i := 0; i < churnChildren; i++ {
		cs = append(cs, startChild(t, "churn", path))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < churnKills; k++ {
		from := ops.Load()
		waitUntil(t, func() bool { return ops.Load() >= from+opsPerKill },
			func() string {
				return fmt.Sprintf("kill %d: no progress past %d operations: %+v", k, ops.Load(), l.Stats())
			})
		i := rng.IntN(len(cs))
		cs[i].cmd.Process.Signal(syscall.SIGKILL)
		if k%2 == 0 {
			cs[i].wait() // else left a zombie until the test ends
		}
		cs[i] = startChild(t, "churn", path)
	}
	word64(mem, offDataStop).Store(1)
	for i, c := range cs {
		if err := c.wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, c.out.String())
		}
	}
	if bad := word64(mem, offDataBad).Load(); bad != 0 {
		t.Fatalf("%d reads saw a half-done write", bad)
	}
	err := l.LockTimeout(waitDeadline)
	if err == wire.EOWNERDEAD {
		word64(mem, offDataY).Store(word64(mem, offDataX).Load())
		l.MarkConsistent()
	} else if err != nil {
		t.Fatalf("last Lock: %v: %+v", err, l.Stats())
	}
	l.Unlock()
	if s := l.Stats(); s.ReadHolds != 0 || s.Writer {
		t.Fatalf("stats: %+v", s)
	}
	t.Logf("%d operations; %+v", ops.Load(), l.Stats())
}
