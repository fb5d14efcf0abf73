package dispatch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

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
