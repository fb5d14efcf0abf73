package dispatch

// Tests of the markers' acquire and release through Submit, against
// marker stores that race, answer a write ambiguously, or fail.

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// raceStore is a MemStore whose first n Gets after arm(n) read the store
// and then wait for each other, so that two acquires read the same version
// of a marker and then both try to CAS it: the race in which exactly one may win. The wait is
// bounded: a test that goes wrong does not hang on it.
type raceStore struct {
	*MemStore
	mu struct {
		sync.Mutex
		left int           // Gets still to hold at the gate
		gate chan struct{} // closed when the last of them arrives
	}
}

func (s *raceStore) arm(n int) {
	s.mu.Lock()
	s.mu.left, s.mu.gate = n, make(chan struct{})
	s.mu.Unlock()
}

func (s *raceStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	val, ver, err := s.MemStore.Get(ctx, key)
	s.mu.Lock()
	gate := s.mu.gate
	if s.mu.left > 0 {
		s.mu.left--
		if s.mu.left == 0 {
			close(gate)
		}
	} else {
		gate = nil
	}
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-time.After(10 * time.Second):
		}
	}
	return val, ver, err
}

// TestSimultaneousSubmitOneWinner: two dispatchers submit an update of
// one resource at the same instant, both reading the marker before either
// writes it. Exactly one acquires it and runs; the other is refused with
// ECONFLICT, in every one of many rounds (a lost compare-and-set taken as
// a win would run both).
func TestSimultaneousSubmitOneWinner(t *testing.T) {
	// The target's call runs until the test lets it go, so the winner
	// holds the marker until both Submits have returned.
	const callHold = wire.CallUserBase + 9
	target := newEP(t, 1000, smallTarget)
	release := make(chan struct{}, 2)
	var runs atomic.Int64
	must(t, target.Register(callHold, "hold", nil, 0, func(*rfc.Request, *wire.Params) wire.Errno {
		runs.Add(1)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return wire.OK
	}))
	store := &raceStore{MemStore: NewMemStore(0)}
	ds := []*Dispatcher{
		newDispatcher(t, newEP(t, 1, nil), store, nil),
		newDispatcher(t, newEP(t, 2, nil), store, nil),
	}
	ctx := ctxFor(t, time.Minute)
	const rounds = 100
	for round := 0; round < rounds; round++ {
		res := fmt.Sprintf("res/%d", round%3)
		store.arm(2)
		type result struct {
			d   *Dispatcher
			id  uint64
			err error
		}
		out := make(chan result, 2)
		for _, d := range ds {
			go func() {
				op := opFor(res, KindUpdate, CallOf(callHold, nil), []netip.AddrPort{target.Addr()}, 20*time.Second)
				id, err := d.Submit(ctx, op)
				out <- result{d, id, err}
			}()
		}
		var wins []result
		for i := 0; i < 2; i++ {
			r := <-out
			switch errnoOf(r.err) {
			case wire.OK:
				wins = append(wins, r)
			case wire.ECONFLICT:
			default:
				t.Fatalf("round %d: Submit: %v", round, r.err)
			}
		}
		for range wins {
			release <- struct{}{}
		}
		for _, w := range wins {
			if st, err := w.d.Wait(ctx, w.id); err != nil || st.Done != 1 {
				t.Fatalf("round %d: Wait: %+v %v", round, st, err)
			}
		}
		if len(wins) != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", round, len(wins))
		}
		if _, _, err := store.MemStore.Get(ctx, DefaultConfig().KeyPrefix+res); errnoOf(err) != wire.ENOENT {
			t.Fatalf("round %d: marker left after the operation: %v", round, err)
		}
	}
	var conflicts uint64
	for _, d := range ds {
		conflicts += d.Stats().Conflicts
	}
	if conflicts != rounds {
		t.Fatalf("%d conflicts counted over %d rounds", conflicts, rounds)
	}
	if n := runs.Load(); n != rounds {
		t.Fatalf("%d calls ran over %d rounds", n, rounds)
	}
}

// ambiguousStore applies the first CAS it sees and then answers it with
// reply, as a registry does when it applies a write and still answers
// EAGAIN, or when a client times out on one center and its retry on the
// other finds the version that write made (ECONFLICT).
type ambiguousStore struct {
	*MemStore
	reply wire.Errno
	armed atomic.Bool
}

func (s *ambiguousStore) CAS(ctx context.Context, key string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	v, err := s.MemStore.CAS(ctx, key, expect, value, ttl)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		return 0, s.reply
	}
	return v, err
}

// TestAmbiguousCASRecognised: an operation whose marker CAS was applied
// but answered with an error recognises its own holder on the next read
// and proceeds: the calls are sent, and the marker is gone afterwards.
func TestAmbiguousCASRecognised(t *testing.T) {
	for _, reply := range []wire.Errno{wire.EAGAIN, wire.ECONFLICT, wire.ETIMEDOUT} {
		for _, kind := range []Kind{KindUpdate, KindDelete} {
			t.Run(reply.String()+"/"+kind.String(), func(t *testing.T) {
				ts := startTargets(t, 2)
				store := &ambiguousStore{MemStore: NewMemStore(0), reply: reply}
				store.armed.Store(true)
				d := newDispatcher(t, newEP(t, 1, nil), store, nil)
				id, err := d.Submit(ctxFor(t, 5*time.Second), opFor("db/x", kind, workCall(0), ts.addrs(), 5*time.Second))
				if err != nil {
					t.Fatalf("Submit: %v", err)
				}
				st, err := d.Wait(ctxFor(t, 10*time.Second), id)
				if err != nil || st.Failed != 0 || st.Done != 2 {
					t.Fatalf("Wait: %+v %v", st, err)
				}
				if n := ts.runs.Load(); n != 2 {
					t.Fatalf("%d calls run, want 2", n)
				}
				if _, _, err := store.Get(context.Background(), DefaultConfig().KeyPrefix+"db/x"); errnoOf(err) != wire.ENOENT {
					t.Fatalf("marker left: %v", err)
				}
			})
		}
	}
}

// TestFailedAcquireReleasesMaybeHolder: when acquire fails after a CAS
// that may have been applied, Submit takes the holder out, so the
// resource is not locked until the holder's expiry.
func TestFailedAcquireReleasesMaybeHolder(t *testing.T) {
	ts := startTargets(t, 1)
	store := &failingGetStore{MemStore: NewMemStore(0)}
	d := newDispatcher(t, newEP(t, 1, nil), store, nil)
	store.casReply = wire.ETIMEDOUT // applied, answered ETIMEDOUT; then the store is unreachable for reads
	_, err := d.Submit(ctxFor(t, 5*time.Second), opFor("db/y", KindUpdate, workCall(0), ts.addrs(), 5*time.Second))
	if err == nil {
		t.Fatal("Submit succeeded with an unreadable store")
	}
	store.getFails.Store(false)
	store.casReply = wire.OK
	if _, err := d.Submit(ctxFor(t, 5*time.Second), opFor("db/y", KindUpdate, workCall(0), ts.addrs(), 5*time.Second)); err != nil {
		t.Fatalf("second Submit: %v (the first one's holder was left)", err)
	}
}

// failingGetStore applies CAS and answers casReply; after such a reply
// every Get fails with ETIMEDOUT until getFails is cleared, while Delete
// and later CAS work.
type failingGetStore struct {
	*MemStore
	casReply wire.Errno
	getFails atomic.Bool
	gets     atomic.Int64
}

func (s *failingGetStore) CAS(ctx context.Context, key string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	v, err := s.MemStore.CAS(ctx, key, expect, value, ttl)
	if err == nil && s.casReply != wire.OK {
		s.getFails.Store(true)
		return 0, s.casReply
	}
	return v, err
}

func (s *failingGetStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	// The first read after the ambiguous CAS fails; the release's read
	// after it works.
	if s.getFails.Load() && s.gets.Add(1) == 1 {
		return nil, 0, wire.ETIMEDOUT
	}
	return s.MemStore.Get(ctx, key)
}

// flakyDeleteStore answers the first fails Deletes with ETIMEDOUT without
// applying them, as a registry does when both centers are briefly out of
// reach; the rest work.
type flakyDeleteStore struct {
	*MemStore
	fails   atomic.Int64
	deletes atomic.Int64
}

func (s *flakyDeleteStore) Delete(ctx context.Context, key string, expect uint64) error {
	s.deletes.Add(1)
	if s.fails.Add(-1) >= 0 {
		return wire.ETIMEDOUT
	}
	return s.MemStore.Delete(ctx, key, expect)
}

// TestReleaseRetriesTransientError: a release that fails on a transient
// error is tried again, so the marker does not stay held until its
// expiry; one that keeps failing stops after releaseTries tries and is
// counted once in ReleaseFailed.
func TestReleaseRetriesTransientError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fails      int64
		wantMarker bool
		wantFailed uint64
		wantTries  int64
	}{
		{"transient", 2, false, 0, 3},
		{"persistent", 1 << 30, true, 1, releaseTries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startTargets(t, 1)
			store := &flakyDeleteStore{MemStore: NewMemStore(0)}
			store.fails.Store(tc.fails)
			d := newDispatcher(t, newEP(t, 1, nil), store, nil)
			id, err := d.Submit(ctxFor(t, 5*time.Second), opFor("db/r", KindUpdate, workCall(0), ts.addrs(), 5*time.Second))
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			if _, err := d.Wait(ctxFor(t, 30*time.Second), id); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			_, _, err = store.MemStore.Get(context.Background(), DefaultConfig().KeyPrefix+"db/r")
			if held := errnoOf(err) != wire.ENOENT; held != tc.wantMarker {
				t.Fatalf("marker held %v (%v), want %v", held, err, tc.wantMarker)
			}
			if n := d.Stats().ReleaseFailed; n != tc.wantFailed {
				t.Fatalf("ReleaseFailed %d, want %d", n, tc.wantFailed)
			}
			if n := store.deletes.Load(); n != tc.wantTries {
				t.Fatalf("%d deletes, want %d", n, tc.wantTries)
			}
		})
	}
}

// unreachableStore is a MemStore that, once down, answers no read: a Get
// waits for its context and returns ETIMEDOUT, as the registry client
// does while both centers are out of reach.
type unreachableStore struct {
	*MemStore
	down atomic.Bool
}

func (s *unreachableStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if s.down.Load() {
		<-ctx.Done()
		return nil, 0, wire.ETIMEDOUT
	}
	return s.MemStore.Get(ctx, key)
}

// TestCloseBoundedWithStoreDown: with the marker store out of reach, a
// release tries releaseTries times, each up to MarkerTimeout; Close
// waits for the releaser, and a release under way when Close came ran
// all its tries, so Close took about four MarkerTimeouts instead of its
// closeReleaseBudget (rfcd took 7.7 s to stop with its registry down).
// Close now ends that release too when the budget runs out; the marker
// lapses at its expiry.
func TestCloseBoundedWithStoreDown(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(1)
		store := &unreachableStore{MemStore: NewMemStore(0)}
		d := newDispatcher(t, w.ep(1, nil), store, nil)
		ctx := ctxFor(t, time.Minute)
		_, err := d.Submit(ctx, opFor("db/down", KindUpdate, workCall(0), ts.addrs(), 5*time.Second))
		must(t, err)
		store.down.Store(true)
		synctest.Wait() // the call is done and its release waits on the store
		start := time.Now()
		must(t, d.Close())
		if took := time.Since(start); took > closeReleaseBudget {
			t.Fatalf("Close took %v with the store out of reach, want at most %v", took, closeReleaseBudget)
		}
		if n := d.Stats().ReleaseFailed; n != 1 {
			t.Fatalf("ReleaseFailed %d, want 1", n)
		}
	})
}
