package rfc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestAtMostOnceUnderLoss sends non-idempotent increments through a relay
// that loses 20% and duplicates 5% of datagrams each way (and reorders
// some). Every call must return success or an error number; the server's
// counter must equal the successes; no increment may run twice.
func TestAtMostOnceUnderLoss(t *testing.T) {
	total := 20000
	if testing.Short() {
		total = 4000
	}
	srv := newTestServer(t, nil)
	f := simnet.Faults{Loss: 0.20, Dup: 0.05, Reorder: 0.05, ReorderBy: 3 * time.Millisecond}
	relay, err := simnet.NewRelay(srv.Addr(), simnet.RelayConfig{Faults: f, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	cli := newTestEndpoint(t, nil)
	const callers = 64
	var next, ok, failed atomic.Int64
	var seen sync.Map // counter value -> true: each value handed out once
	var dupValue atomic.Bool
	errs := map[wire.Errno]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Go(func() {
			var rep Reply
			for next.Add(1) <= int64(total) {
				err := cli.Call(ctxTimeout(t, 3*time.Second), relay.Addr(), callIncr, nil, &rep)
				if err != nil {
					e := wire.AsErrno(err)
					mu.Lock()
					errs[e]++
					mu.Unlock()
					failed.Add(1)
					continue
				}
				ok.Add(1)
				if _, loaded := seen.LoadOrStore(rep.Param(0).Uint64(), true); loaded {
					dupValue.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load()+failed.Load() != int64(total) {
		t.Fatalf("%d ok + %d failed != %d calls", ok.Load(), failed.Load(), total)
	}
	if dupValue.Load() {
		t.Fatal("two successful calls returned the same counter value")
	}
	for e := range errs {
		if !e.Known() {
			t.Fatalf("unknown error number %v", e)
		}
	}
	// Calls that failed may or may not have run (their reply was lost
	// until the deadline): the counter is at least the successes and the
	// runs equal the counter (nothing ran twice).
	runs := srv.runs.Load()
	if srv.counter.Load() != runs {
		t.Fatalf("counter %d, runs %d", srv.counter.Load(), runs)
	}
	if runs < uint64(ok.Load()) || runs > uint64(ok.Load())+uint64(errs[wire.ETIMEDOUT]) {
		t.Fatalf("runs %d, successes %d, errors %v", runs, ok.Load(), errs)
	}
	st := srv.Stats()
	var dups uint64
	for _, c := range st.Served {
		if c.CallNo == callIncr {
			dups = c.Dups
		}
	}
	retrans := allRetrans(cli.Stats())
	t.Logf("%d calls: %d ok, errors %v; runs %d; retransmissions %d; duplicates absorbed %d; relay dropped %d duplicated %d reordered %d",
		total, ok.Load(), errs, runs, retrans, dups, relay.C.Dropped.Load(), relay.C.Duplicated.Load(), relay.C.Reordered.Load())
	if relay.C.Dropped.Load() == 0 || relay.C.Duplicated.Load() == 0 || dups == 0 || retrans == 0 {
		t.Fatal("the relay injected no faults or the engine saw none")
	}
}

// TestNoResendPastBudget: the callee keeps what refuses a copy of a
// non-idempotent call (its cache entry, then its sender's floor) until the
// copy's arrival plus the budget it carries, and the budget field tops out
// at 2^32-1 µs. A caller whose deadline lies further must not send a copy
// later than that after its first send, or a copy arriving after the
// callee let the floor go would run again. The call still ends at its
// deadline.
func TestNoResendPastBudget(t *testing.T) {
	dst := silentAddr(t)
	cli := newTestEndpoint(t, func(c *Config) {
		// No real retransmission during the test: only the
		// expiries the test drives.
		c.MinRTO, c.InitialRTO, c.MaxRTO = time.Hour, time.Hour, time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	pd, err := cli.Go(ctx, dst, callIncr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pd.Release()
	pd.mu.Lock()
	id, idx, sentAt, deadline := pd.mu.callID, pd.idx, pd.mu.sentAt, pd.mu.deadline
	pd.mu.Unlock()
	cli.expire(timerEntry{id: id, idx: idx}, sentAt+maxBudget/2)
	pd.mu.Lock()
	r := pd.mu.retrans
	pd.mu.Unlock()
	if r != 1 {
		t.Fatalf("retransmissions within the budget: %d, want 1", r)
	}
	cli.expire(timerEntry{id: id, idx: idx}, sentAt+maxBudget+1)
	pd.mu.Lock()
	r = pd.mu.retrans
	pd.mu.Unlock()
	if r != 1 {
		t.Errorf("a copy was sent %v after the first send, past the largest budget", time.Duration(maxBudget+1))
	}
	cli.expire(timerEntry{id: id, idx: idx}, deadline)
	select {
	case <-pd.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("call not ended at its deadline")
	}
	if err := pd.Err(); err != wire.ETIMEDOUT {
		t.Fatalf("call ended %v, want ETIMEDOUT", err)
	}
}
