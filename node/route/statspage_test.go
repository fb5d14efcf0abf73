package route

import (
	"fmt"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// TestRouteStatsPagesByName: sub-clusters added or removed between two
// pages of CallRouteStats make no other sub-cluster appear twice or go
// missing. The cursor was an index into the sorted list: a name added
// before it shifted the next page back by one (an entry shown twice), a
// name removed before it shifted it forward (one skipped).
func TestRouteStatsPagesByName(t *testing.T) {
	r := &Router{}
	r.tbl.init()
	setCounters := func(add bool, names ...string) {
		r.tbl.mu.Lock()
		defer r.tbl.mu.Unlock()
		for _, n := range names {
			if add {
				r.tbl.countersLocked(n)
			} else {
				delete(r.tbl.mu.counters, n)
			}
		}
	}
	var all []string
	for i := 0; i < 12; i++ {
		all = append(all, fmt.Sprintf("c%02d", 2*i+1)) // room for names between
	}
	srv := rfctest.Listen(t, 1, nil)
	if err := srv.Register(CallRouteStats, "route-stats", schemaRouteStats, rfc.Idempotent, r.serveStats); err != nil {
		t.Fatal(err)
	}
	cli := rfctest.Listen(t, 2, nil)
	ctx := rfctest.Context(t, 10*time.Second)
	for _, change := range []struct {
		add       bool
		name, how string
	}{{true, "c00", "added"}, {false, "c01", "removed"}} {
		setCounters(true, all...)
		setCounters(false, "c00")
		seen := map[string]int{}
		var cur StatsCursor
		for pages := 0; ; pages++ {
			cs, next, more, err := RouteStatsPage(ctx, cli, srv.Addr(), cur)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) == 0 || len(cs) >= len(all) {
				t.Fatalf("a page of %d entries: the test needs several pages", len(cs))
			}
			for _, c := range cs {
				seen[c.Name]++
			}
			if pages == 0 {
				setCounters(change.add, change.name)
			}
			if !more {
				break
			}
			cur = next
		}
		for _, n := range all {
			if n == change.name {
				continue
			}
			if seen[n] != 1 {
				t.Errorf("%s %s between pages: %s listed %d times", change.name, change.how, n, seen[n])
			}
		}
	}
}
