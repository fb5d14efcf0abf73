package dispatch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

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
