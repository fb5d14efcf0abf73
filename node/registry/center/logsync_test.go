package center

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// gate holds fsyncs back until the test opens it. newGate also opens it
// in the test's cleanup: a test that fails before it opens the gate does
// not leave an fsync blocked on it, and the log's close (which waits for
// that fsync) does not hang until the go test timeout. A test that closes
// the log in a defer opens the gate in a later defer as well.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait() { <-g.ch }

// setSyncFile replaces the log's fsync; syncMu guards the field.
func setSyncFile(l *logFile, fn func(f File) error) {
	l.syncMu.Lock()
	l.syncFile = fn
	l.syncMu.Unlock()
}

// TestLogGroupCommit: writers that wait while an fsync is running share
// the next one, however they interleave; a whenSynced callback is
// answered by the same fsync.
func TestLogGroupCommit(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	defer l.close()
	var syncs atomic.Int32
	entered, release := make(chan struct{}), newGate(t)
	defer release.open()
	setSyncFile(l, func(f File) error {
		if syncs.Add(1) == 1 {
			close(entered)
			release.wait()
		}
		return f.Sync()
	})
	first, err := l.append("kv/first", kvRecord(2, "v"))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	errs := make(chan error, writers+2)
	go func() { errs <- l.syncTo(first) }()
	select {
	case <-entered:
	case err := <-errs:
		t.Fatalf("syncTo returned (%v) without an fsync", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no fsync started")
	}
	// The disk is busy with the first fsync: every writer below appends
	// before it ends, so one more fsync covers them all.
	var wg sync.WaitGroup
	var last logPos
	for i := 0; i < writers; i++ {
		pos, err := l.append("kv/w", kvRecord(uint64(4+2*i), "v"))
		if err != nil {
			t.Fatal(err)
		}
		last = pos
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.syncTo(pos)
		}()
	}
	var called atomic.Int32
	if err, now := l.whenSynced(last, func(err error) {
		if err != nil {
			t.Errorf("whenSynced: %v", err)
		}
		called.Add(1)
	}); now {
		t.Fatalf("whenSynced settled at once (%v) while the position is not durable", err)
	}
	release.open()
	wg.Wait()
	for i := 0; i < writers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 2 {
		t.Fatalf("%d fsyncs for %d writers waiting together, want 2", n, writers+1)
	}
	if called.Load() != 1 {
		t.Fatalf("whenSynced callback ran %d times", called.Load())
	}
}

// TestLogSyncAfterReopen: a log reopened from an existing file hands out
// positions that syncTo really syncs (generation 0 is "nothing to sync").
func TestLogSyncAfterReopen(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		l := openTestLog(t, dir, nil)
		var syncs atomic.Int32
		setSyncFile(l, func(f File) error { syncs.Add(1); return f.Sync() })
		pos, err := l.append("kv/k", kvRecord(uint64(2+2*round), "v"))
		if err != nil {
			t.Fatal(err)
		}
		if pos.gen == 0 {
			t.Fatalf("round %d: position of generation 0", round)
		}
		if err := l.syncTo(pos); err != nil {
			t.Fatal(err)
		}
		if syncs.Load() != 1 {
			t.Fatalf("round %d: %d fsyncs, want 1", round, syncs.Load())
		}
		l.close()
	}
}

// TestLogSyncFailureSticky: after a failed fsync the log refuses appends
// and reports the failure to every waiter, until a snapshot has
// rewritten the store.
func TestLogSyncFailureSticky(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, nil)
	defer l.close()
	setSyncFile(l, func(File) error { return syscall.EIO })
	pos, err := l.append("kv/a", kvRecord(2, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.syncTo(pos); err != syscall.EIO {
		t.Fatalf("syncTo: %v, want EIO", err)
	}
	if _, err := l.append("kv/b", kvRecord(2, "b")); err != wire.EFAULT {
		t.Fatalf("append after a failed fsync: %v, want EFAULT", err)
	}
	if err, now := l.whenSynced(pos, func(error) { t.Error("callback ran") }); !now || err != syscall.EIO {
		t.Fatalf("whenSynced: %v %v", err, now)
	}
	setSyncFile(l, File.Sync)
	if err := l.snapshot(func(fn func(string, []byte)) { fn("kv/a", kvRecord(2, "a")) }); err != nil {
		t.Fatal(err)
	}
	pos, err = l.append("kv/b", kvRecord(2, "b"))
	if err != nil {
		t.Fatalf("append after the snapshot: %v", err)
	}
	if err := l.syncTo(pos); err != nil {
		t.Fatalf("syncTo after the snapshot: %v", err)
	}
	l.close()
	got := map[string]bool{}
	l2 := openTestLog(t, dir, func(k string, _ []byte) { got[k] = true })
	l2.close()
	if !got["kv/a"] || !got["kv/b"] {
		t.Fatalf("recovered %v", got)
	}
}

// logSync calls registry.CallLogSync on dst as center index 1.
func logSync(t testing.TB, ep *rfc.Endpoint, dst netip.AddrPort, inc uint64, pos logPos) wire.Errno {
	return regtest.Call(t, ep, dst, registry.CallLogSync, func(ps *wire.Params) {
		ps.Uint64(1)
		ps.Uint64(inc)
		ps.Uint64(pos.gen)
		ps.Uint64(uint64(pos.off))
	})
}

// TestLogSyncCall: registry.CallLogSync answers once the position is on disk, and
// refuses a position of another incarnation of the log (the center
// restarted since it gave it) or one past the end.
func TestLogSyncCall(t *testing.T) {
	caller := regtest.Endpoint(t, 101, "") // the peer center, as far as c knows
	c := startLone(t, testCenterConfig(t.TempDir(), 0, caller.Addr()))
	ep := c.Endpoint()
	inc := c.wal.incarnation
	if e := logSync(t, caller, ep.Addr(), inc, c.wal.end()); e != wire.OK {
		t.Fatalf("durable position: %v", e)
	}
	if e := logSync(t, caller, ep.Addr(), inc+1, c.wal.end()); e != wire.ESTALE {
		t.Fatalf("other incarnation: %v, want ESTALE", e)
	}
	end := c.wal.end()
	if e := logSync(t, caller, ep.Addr(), inc, logPos{gen: end.gen, off: end.off + 1}); e != wire.EINVAL {
		t.Fatalf("past the end: %v, want EINVAL", e)
	}
	if e := logSync(t, caller, ep.Addr(), inc, logPos{gen: end.gen + 1, off: logHdrSize}); e != wire.EINVAL {
		t.Fatalf("future generation: %v, want EINVAL", e)
	}

	// A position not yet on disk is answered by the fsync that covers it.
	release := newGate(t)
	setSyncFile(c.wal, func(f File) error {
		release.wait()
		return f.Sync()
	})
	ep.MarkDead(caller.Addr()) // c writes alone: no replica to wait for
	cl := newClient(t, regtest.Endpoint(t, 7, ""), ep.Addr())
	put := make(chan error, 1)
	go func() {
		_, err := cl.Put(rfctest.Context(t, 5*time.Second), "k", []byte("v"), 0)
		put <- err
	}()
	if !rfctest.WaitFor(5*time.Second, func() bool { _, ok := c.Entry("kv/k"); return ok }) {
		t.Fatal("write not applied")
	}
	sync := make(chan wire.Errno, 1)
	go func() { sync <- logSync(t, caller, ep.Addr(), inc, c.wal.end()) }()
	release.open()
	if e := <-sync; e != wire.OK {
		t.Fatalf("pending position: %v", e)
	}
	if err := <-put; err != nil {
		t.Fatal(err)
	}
}

// TestWriteWaitsForBothLogs: a write replicated to the other center is
// acknowledged only once it is on the disk of both centers, whichever
// fsync ends last.
func TestWriteWaitsForBothLogs(t *testing.T) {
	for slow := 0; slow < 2; slow++ {
		t.Run([...]string{"writer-disk-slow", "replica-disk-slow"}[slow], func(t *testing.T) {
			p := startPair(t, nil)
			cl := newClient(t, regtest.Endpoint(t, 7, ""), p.Addrs()[0])
			ctx := rfctest.Context(t, 10*time.Second)
			if _, err := cl.Put(ctx, "warm", []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
			release := newGate(t)
			setSyncFile(p.Cs[slow].wal, func(f File) error {
				release.wait()
				return f.Sync()
			})
			put := make(chan error, 1)
			go func() {
				_, err := cl.Put(ctx, "k", []byte("v"), 0)
				put <- err
			}()
			if !rfctest.WaitFor(5*time.Second, func() bool {
				_, a := p.Cs[0].Entry("kv/k")
				_, b := p.Cs[1].Entry("kv/k")
				return a && b
			}) {
				t.Fatal("write not applied at both centers")
			}
			select {
			case err := <-put:
				t.Fatalf("write acknowledged (%v) while center %d has not synced it", err, slow)
			default:
			}
			release.open()
			if err := <-put; err != nil {
				t.Fatal(err)
			}
		})
	}
}
