package dispatch

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
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
