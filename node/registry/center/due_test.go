package center

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"fastcall/node/registry/sdk"
)

// TestTakeDueVisitsOnlyDue: of many entries with deadlines far off and a
// few due, takeDue hands over exactly the due ones, in both clocks, and
// looks at no other item; a lease renewed in place after its item was
// pushed is not handed over but kept for its new deadline; replaced and
// removed entries' items are dropped; an entry handed back with track is
// handed over again at the next call.
func TestTakeDueVisitsOnlyDue(t *testing.T) {
	const far, n = int64(1 << 40), 10000
	s := newStore()
	for i := 0; i < n; i++ {
		s.set(fmt.Sprintf("kv/far/%05d", i), &entry{kind: sdk.KindKV, expireMs: far})
	}
	s.set("kv/none", &entry{kind: sdk.KindKV})
	s.set("kv/due", &entry{kind: sdk.KindKV, expireMs: 100})
	s.set("tomb/due", &entry{kind: sdk.KindTombstone, expireMs: 150})
	s.set("svc/due", &entry{kind: sdk.KindService, leaseDue: 1000})
	renewed := &entry{kind: sdk.KindService, leaseDue: 1000}
	s.set("svc/renewed", renewed)
	renewed.leaseDue = 5000 // renewed in place (renewOwner)
	s.set("kv/replaced", &entry{kind: sdk.KindKV, expireMs: 100})
	s.set("kv/replaced", &entry{kind: sdk.KindKV, expireMs: far})
	s.set("kv/removed", &entry{kind: sdk.KindKV, expireMs: 100})
	s.remove("kv/removed")

	var got []string
	take := func(nowMs, monoNs int64) []string {
		got = got[:0]
		s.takeDue(nowMs, monoNs, func(k string, e *entry) { got = append(got, k) })
		slices.Sort(got)
		return got
	}
	if g := take(200, 2000); !slices.Equal(g, []string{"kv/due", "svc/due", "tomb/due"}) {
		t.Fatalf("due at 200 ms / 2000 ns: %q", g)
	}
	if g := take(200, 2000); len(g) != 0 {
		t.Fatalf("taken twice: %q", g)
	}
	if g := take(200, 6000); !slices.Equal(g, []string{"svc/renewed"}) {
		t.Fatalf("after the renewed lease: %q", g)
	}
	// An expiry whose write failed is handed back and taken again.
	s.handBack("svc/renewed", renewed, s.rebuilds)
	if g := take(200, 6000); !slices.Equal(g, []string{"svc/renewed"}) {
		t.Fatalf("handed back: %q", g)
	}
	if h := len(s.wall) + len(s.mono); h != n+1 {
		t.Fatalf("%d items left, want the %d far entries", h, n+1)
	}
}

// TestDueHeapsBounded: writing one key again and again with a TTL far
// off leaves a stale item per write until its deadline; set rebuilds the
// heaps before they pass one item per key plus dueSlack, and the live
// deadline is still there.
func TestDueHeapsBounded(t *testing.T) {
	s := newStore()
	far := time.Now().Add(time.Hour).UnixMilli()
	for i := 0; i < 10*dueSlack; i++ {
		s.set("kv/k", &entry{kind: sdk.KindKV, expireMs: far + int64(i)})
		if h := len(s.wall) + len(s.mono); h > s.len()+dueSlack+1 {
			t.Fatalf("write %d: %d items for %d keys", i, h, s.len())
		}
	}
	var got []string
	s.takeDue(far+int64(10*dueSlack), 0, func(k string, e *entry) { got = append(got, k) })
	if !slices.Equal(got, []string{"kv/k"}) {
		t.Fatalf("due: %q", got)
	}
}

// TestHandBackAfterRebuild: an entry takeDue handed over is out of the
// heaps while the sweep's write of its expiry runs without the center's
// lock; writes of other keys meanwhile may rebuild the heaps from the
// map, which holds it still. If that write fails and the sweep hands the
// entry back, the next sweep takes it once, not once per item.
func TestHandBackAfterRebuild(t *testing.T) {
	s := newStore()
	e := &entry{kind: sdk.KindService, leaseDue: 1000}
	s.set("svc/a", e)
	take := func() []string {
		var got []string
		s.takeDue(0, 2000, func(k string, e *entry) { got = append(got, k) })
		return got
	}
	if g := take(); !slices.Equal(g, []string{"svc/a"}) {
		t.Fatalf("due: %q", g)
	}
	taken := s.rebuilds
	// Writes during the expiry's write, enough to rebuild the heaps.
	far := time.Now().Add(time.Hour).UnixMilli()
	for i := 0; i < 2*dueSlack; i++ {
		s.set("kv/k", &entry{kind: sdk.KindKV, expireMs: far})
	}
	s.handBack("svc/a", e, taken) // the expiry's write failed
	if g := take(); !slices.Equal(g, []string{"svc/a"}) {
		t.Fatalf("after a rebuild and the hand-back, the next sweep took %q: want svc/a once", g)
	}
	if g := take(); len(g) != 0 {
		t.Fatalf("taken again with nothing handed back: %q", g)
	}
}
