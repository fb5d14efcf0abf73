//go:build linux

package lock

import (
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// newRegion returns a fresh, 8-byte aligned, formatted region of Size bytes
// in ordinary memory, and a handle on it.
func newRegion(t testing.TB) ([]byte, *RWLock) {
	t.Helper()
	buf := make([]uint64, Size/8) // uint64 backing guarantees alignment
	mem := unsafeBytes(buf)
	l, err := Init(mem)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return mem, l
}

// attach is Attach that fails the test on error.
func attachT(t testing.TB, mem []byte) *RWLock {
	t.Helper()
	l, err := Attach(mem)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	return l
}

// twoHandles returns two handles on a new lock, each with a slot of its
// own, as two processes that share the region would hold them.
func twoHandles(t testing.TB) (a, b *RWLock) {
	t.Helper()
	mem, a := newRegion(t)
	return a, attachT(t, mem)
}

func TestLayout(t *testing.T) {
	tests := []struct {
		name      string
		got, want int
	}{
		{"header fits", offReserved + reservedSize, headerSize},
		{"slots fill the region", headerSize + slotCount*slotSize, Size},
		{"slot count", slotCount, 124},
		{"state word 4-aligned", offState % 4, 0},
		{"counters 8-aligned", offReclaimedW % 8, 0},
		{"slot word 8-aligned", (headerSize + slotOffWord) % 8, 0},
		{"owner field names every slot", boolInt(slotCount <= stateOwnerMask), 1},
		{"pid field holds linux pids", slotPidMask, 1<<22 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %d, want %d", tc.got, tc.want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestInitAttachErrors(t *testing.T) {
	good, _ := newRegion(t)
	tests := []struct {
		name   string
		mutate func(mem []byte) []byte
		want   wire.Errno
	}{
		{"ok", func(m []byte) []byte { return m }, wire.OK},
		{"short", func(m []byte) []byte { return m[:Size-1] }, wire.EINVAL},
		{"misaligned", func(m []byte) []byte { return m[4:] }, wire.EINVAL},
		{"zero", func(m []byte) []byte { clear(m); return m }, wire.EPROTO},
		{"magic", func(m []byte) []byte { m[offMagic]++; return m }, wire.EPROTO},
		{"version", func(m []byte) []byte { word32(m, offVersion).Store(Version + 1); return m }, wire.EPROTO},
		{"slot count", func(m []byte) []byte { word32(m, offSlotCount).Store(slotCount - 1); return m }, wire.EPROTO},
		{"slot size", func(m []byte) []byte { word32(m, offSlotSize).Store(16); return m }, wire.EPROTO},
		{"high water", func(m []byte) []byte { word32(m, offHighWater).Store(slotCount + 1); return m }, wire.EPROTO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]uint64, Size/8+1)
			mem := unsafeBytes(buf)
			copy(mem, good)
			_, err := Attach(tc.mutate(mem))
			if got := wire.AsErrno(err); got != tc.want {
				t.Fatalf("Attach: got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("init short", func(t *testing.T) {
		if _, err := Init(make([]byte, Size-8)); wire.AsErrno(err) != wire.EINVAL {
			t.Fatalf("got %v, want EINVAL", err)
		}
	})
}

// TestAttachGarbageNeverPanics: Attach on random bytes never panics, and
// refuses with EPROTO every region whose layout words are not this
// layout's: random bytes, and random bytes behind a header in which one
// layout word (magic, version, slot count, slot size, high water) is
// wrong. Behind a correct header the rest may be anything: Attach then
// takes a slot or finds none (ENOSPC), and a handle it returns reads its
// statistics.
func TestAttachGarbageNeverPanics(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	buf := make([]uint64, Size/8)
	mem := unsafeBytes(buf)
	const cases = 7
	for i := 0; i < 100*cases; i++ {
		r.Read(mem)
		c := i % cases
		if c > 0 {
			word32(mem, offMagic).Store(Magic)
			word32(mem, offVersion).Store(Version)
			word32(mem, offSlotCount).Store(slotCount)
			word32(mem, offSlotSize).Store(slotSize)
			word32(mem, offHighWater).Store(uint32(r.Intn(slotCount + 1)))
		}
		bad := 1 + uint32(r.Intn(1000))
		switch c {
		case 1:
			word32(mem, offMagic).Store(Magic ^ bad)
		case 2:
			word32(mem, offVersion).Store(Version + bad)
		case 3:
			word32(mem, offSlotCount).Store(slotCount + bad)
		case 4:
			word32(mem, offSlotSize).Store(slotSize + bad)
		case 5:
			word32(mem, offHighWater).Store(slotCount + bad)
		}
		l, err := Attach(mem)
		switch e := wire.AsErrno(err); {
		case c < cases-1 && e != wire.EPROTO:
			t.Fatalf("region %d (case %d) with a wrong layout word: Attach = %v, want EPROTO", i, c, err)
		case c == cases-1 && e != wire.OK && e != wire.ENOSPC:
			t.Fatalf("region %d with a correct layout: Attach = %v, want OK or ENOSPC", i, err)
		case e == wire.OK:
			_ = l.Stats()
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		start uint64
		alive bool
		err   wire.Errno
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 123456 8192 100 0\n", 123456, true, wire.OK},
		{"spaces and parens in name", "42 (a b) c)) R 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 77 8192 100 0\n", 77, true, wire.OK},
		{"zombie", "42 (x) Z 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 9 0 0 0\n", 9, false, wire.OK},
		{"dead", "42 (x) X 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 9 0 0 0\n", 9, false, wire.OK},
		{"truncated", "42 (x) S 1 42 42 0\n", 0, false, wire.EPROTO},
		{"no paren", "42 x S 1", 0, false, wire.EPROTO},
		{"bad number", "42 (x) S 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 1x2 0 0 0\n", 0, false, wire.EPROTO},
		{"empty", "", 0, false, wire.EPROTO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, alive, err := parseStatForTest([]byte(tc.line))
			if err != tc.err || (err == wire.OK && (start != tc.start || alive != tc.alive)) {
				t.Fatalf("got (%d, %v, %v), want (%d, %v, %v)", start, alive, err, tc.start, tc.alive, tc.err)
			}
		})
	}
}

func TestSleepLength(t *testing.T) {
	tests := []struct {
		name      string
		remaining time.Duration
		timed     bool
		want      time.Duration
		err       wire.Errno
	}{
		{"untimed", 0, false, LivenessPoll, wire.OK},
		{"untimed ignores remaining", -time.Second, false, LivenessPoll, wire.OK},
		{"expired", 0, true, 0, wire.ETIMEDOUT},
		{"negative", -time.Millisecond, true, 0, wire.ETIMEDOUT},
		{"short", time.Millisecond, true, time.Millisecond, wire.OK},
		{"long", time.Hour, true, LivenessPoll, wire.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sleepLength(tc.remaining, tc.timed)
			if got != tc.want || err != tc.err {
				t.Fatalf("got (%v, %v), want (%v, %v)", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestBasicExclusion(t *testing.T) {
	a, b := twoHandles(t)
	steps := []struct {
		name string
		op   func() error
		want wire.Errno
	}{
		{"a read", a.RLock, wire.OK},
		{"b read shares", func() error { return b.RLockTimeout(0) }, wire.OK},
		{"b write blocked by readers", func() error { return b.LockTimeout(10 * time.Millisecond) }, wire.ETIMEDOUT},
		{"readers still get in after writer gave up", func() error { return a.RLockTimeout(0) }, wire.OK},
		{"drop reads", func() error { a.RUnlock(); a.RUnlock(); b.RUnlock(); return nil }, wire.OK},
		{"b write", b.Lock, wire.OK},
		{"a read blocked by writer", func() error { return a.RLockTimeout(10 * time.Millisecond) }, wire.ETIMEDOUT},
		{"a write blocked by writer", func() error { return a.LockTimeout(0) }, wire.ETIMEDOUT},
		{"b unlock", func() error { b.Unlock(); return nil }, wire.OK},
		{"a write", func() error { return a.LockTimeout(time.Second) }, wire.OK},
		{"a unlock", func() error { a.Unlock(); return nil }, wire.OK},
	}
	for _, st := range steps {
		if got := wire.AsErrno(st.op()); got != st.want {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
	s := a.Stats()
	if s.Writer || s.ReadHolds != 0 || s.StrayUnlocks != 0 || s.ReclaimedWriters != 0 || s.SlotsInUse != 2 {
		t.Fatalf("final stats: %+v", s)
	}
}

func TestStrayUnlockIsCounted(t *testing.T) {
	a, b := twoHandles(t)
	a.RUnlock() // nothing held
	if err := b.Lock(); err != nil {
		t.Fatal(err)
	}
	a.Unlock() // b is the writer, not a
	if s := a.Stats(); s.StrayUnlocks != 2 || !s.Writer || s.ReadHolds != 0 {
		t.Fatalf("stats: %+v", s)
	}
	b.Unlock()
	if err := a.LockTimeout(0); err != nil {
		t.Fatalf("lock after stray unlocks: %v", err)
	}
	a.Unlock()
}

func TestOwnerDiedFlag(t *testing.T) {
	l, other := twoHandles(t)
	if err := other.Lock(); err != nil {
		t.Fatal(err)
	}
	other.ForceUnlock() // a removed writer sets the flag like a dead one
	if !l.NeedsRepair() {
		t.Fatal("flag not set by ForceUnlock of a writer")
	}
	if err := l.RLockTimeout(0); err != nil {
		t.Fatalf("reader with flag set: %v", err)
	}
	l.RUnlock()
	for i := 0; i < 2; i++ { // without MarkConsistent, every writer is told
		if err := l.Lock(); wire.AsErrno(err) != wire.EOWNERDEAD {
			t.Fatalf("round %d: got %v, want EOWNERDEAD", i, err)
		}
		l.Unlock()
	}
	other.MarkConsistent() // not the writer: ignored
	if err := l.Lock(); wire.AsErrno(err) != wire.EOWNERDEAD {
		t.Fatalf("got %v, want EOWNERDEAD", err)
	}
	l.MarkConsistent()
	l.Unlock()
	if l.NeedsRepair() {
		t.Fatal("flag still set after MarkConsistent")
	}
	if err := l.Lock(); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	l.Unlock()
}

func TestForceUnlockDropsReaders(t *testing.T) {
	l, other := twoHandles(t)
	for i := 0; i < 3; i++ {
		if err := other.RLock(); err != nil {
			t.Fatal(err)
		}
	}
	l.ForceUnlock()
	if l.NeedsRepair() {
		t.Fatal("forcing out readers must not set the owner-died flag")
	}
	if err := l.LockTimeout(0); err != nil {
		t.Fatalf("lock after force: %v", err)
	}
	l.Unlock()
	other.RUnlock()
	if s := l.Stats(); s.ForcedUnlocks != 1 || s.StrayUnlocks != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestSlotsExhaustedAndDetach(t *testing.T) {
	mem, first := newRegion(t)
	handles := []*RWLock{first}
	for len(handles) < Slots {
		handles = append(handles, attachT(t, mem))
	}
	if _, err := Attach(mem); wire.AsErrno(err) != wire.ENOSPC {
		t.Fatalf("attach past capacity: got %v, want ENOSPC", err)
	}
	h := handles[7]
	if err := h.RLock(); err != nil {
		t.Fatal(err)
	}
	if err := h.Detach(); wire.AsErrno(err) != wire.EBUSY {
		t.Fatalf("detach while holding: got %v, want EBUSY", err)
	}
	h.RUnlock()
	if err := h.Detach(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if err := h.RLock(); wire.AsErrno(err) != wire.EINVAL {
		t.Fatalf("RLock after Detach: got %v, want EINVAL", err)
	}
	again := attachT(t, mem)
	if again.index != 7 {
		t.Fatalf("reattach took slot %d, want the freed slot 7", again.index)
	}
	if err := again.Lock(); err != nil {
		t.Fatalf("lock with a full table: %v", err)
	}
	again.Unlock()
}

// TestAgainstRWMutex drives the lock and a sync.RWMutex with the same random
// sequence of try-operations by several actors and requires the same
// outcome at every step.
func TestAgainstRWMutex(t *testing.T) {
	const actors, steps = 4, 4000
	mem, first := newRegion(t)
	hs := []*RWLock{first}
	for len(hs) < actors {
		hs = append(hs, attachT(t, mem))
	}
	var ref sync.RWMutex
	var reads [actors]int
	var writes [actors]bool
	r := rand.New(rand.NewSource(42))
	for i := 0; i < steps; i++ {
		a := r.Intn(actors)
		switch op := r.Intn(4); {
		case writes[a]:
			hs[a].Unlock()
			ref.Unlock()
			writes[a] = false
		case op == 0:
			got := hs[a].LockTimeout(0) == nil
			if want := ref.TryLock(); got != want {
				t.Fatalf("step %d actor %d TryLock: got %v, want %v", i, a, got, want)
			}
			writes[a] = got
		case op == 1 && reads[a] > 0:
			hs[a].RUnlock()
			ref.RUnlock()
			reads[a]--
		default:
			got := hs[a].RLockTimeout(0) == nil
			if want := ref.TryRLock(); got != want {
				t.Fatalf("step %d actor %d TryRLock: got %v, want %v", i, a, got, want)
			}
			if got {
				reads[a]++
			}
		}
	}
	if s := first.Stats(); s.StrayUnlocks != 0 || s.ReclaimedWriters != 0 || s.ReclaimedSlots != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// pairOp is one operation of the invariant tests on two words that move
// together: with write it adds one to both under the write lock, else it
// checks under the read lock that they are equal (yielding in between when
// yield is set). ok is false when the lock failed or the words differed.
func pairOp(l *RWLock, x, y *atomic.Uint64, write, yield bool) (ok bool, err error) {
	if write {
		if err := l.Lock(); err != nil {
			return false, err
		}
		x.Store(x.Load() + 1)
		runtime.Gosched() // widen the window a broken lock would expose
		y.Store(y.Load() + 1)
		l.Unlock()
		return true, nil
	}
	if err := l.RLock(); err != nil {
		return false, err
	}
	vx := x.Load()
	if yield {
		runtime.Gosched()
	}
	ok = vx == y.Load()
	l.RUnlock()
	return ok, nil
}

// TestGoroutinesInvariant runs goroutines over two handles of one region;
// writers move two words together, readers check they are equal.
func TestGoroutinesInvariant(t *testing.T) {
	const goroutines, iters = 8, 400
	first, second := twoHandles(t)
	hs := []*RWLock{first, second}
	var x, y, bad atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			l := hs[g%len(hs)]
			for i := 0; i < iters; i++ {
				ok, err := pairOp(l, &x, &y, (i+g)%4 == 0, i%8 == 1)
				if !ok {
					bad.Add(1)
				}
				if err != nil {
					return
				}
			}
		}(g)
	}
	wg.Wait()
	var want uint64
	for g := 0; g < goroutines; g++ {
		for i := 0; i < iters; i++ {
			if (i+g)%4 == 0 {
				want++
			}
		}
	}
	if bad.Load() != 0 || x.Load() != want || y.Load() != want {
		t.Fatalf("bad=%d x=%d y=%d want %d", bad.Load(), x.Load(), y.Load(), want)
	}
	if s := first.Stats(); s.ReadHolds != 0 || s.Writer || s.Waiters != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestZeroAllocs(t *testing.T) {
	_, l := newRegion(t)
	tests := []struct {
		name string
		f    func()
	}{
		{"RLock+RUnlock", func() { l.RLock(); l.RUnlock() }},
		{"Lock+Unlock", func() { l.Lock(); l.Unlock() }},
		{"timeout variants", func() { l.RLockTimeout(time.Second); l.RUnlock(); l.LockTimeout(time.Second); l.Unlock() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
				t.Fatalf("%v allocs/op, want 0", n)
			}
		})
	}
}
