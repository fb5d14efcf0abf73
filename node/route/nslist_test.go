package route

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// nsListAll lists every path under prefix from dst (a member or a router)
// with raw ns-list calls of limit paths a page, following the "after"
// cursor, and returns the paths and the number of pages.
func nsListAll(t *testing.T, ep *rfc.Endpoint, dst netip.AddrPort, prefix string, limit int) ([]string, int) {
	t.Helper()
	var out []string
	after := ""
	for pages := 1; ; pages++ {
		var ps wire.Params
		ps.Reset(make([]byte, wire.DefaultMaxDatagram-wire.HeaderSize))
		ps.String(prefix)
		ps.String(after)
		ps.Uint64(uint64(limit))
		rfc.AppendPad(&ps, ep.Config().MaxDatagram)
		var rep rfc.Reply
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := ep.Call(ctx, dst, CallNSList, &ps, &rep)
		cancel()
		if err != nil {
			t.Fatalf("ns-list page %d after %q: %v", pages, after, err)
		}
		if rep.NParams() < 1 || rep.Param(0).Type != wire.TypeUint64 {
			t.Fatalf("ns-list page %d: reply of %d parameters", pages, rep.NParams())
		}
		n := 0
		for i := 1; i < rep.NParams(); i++ {
			out = append(out, rep.Param(i).Str())
			n++
		}
		if rep.Param(0).Uint64() == 0 {
			return out, pages
		}
		if n == 0 {
			t.Fatalf("ns-list page %d after %q: more, but no path", pages, after)
		}
		after = out[len(out)-1]
		if pages > 100000 {
			t.Fatal("ns-list does not end")
		}
	}
}

// TestNSListCursor: a namespace of more paths than one page lists whole
// through the "after" cursor, in order, directly at the member and routed
// through the router, and a page starts strictly after its cursor.
func TestNSListCursor(t *testing.T) {
	tc := newTestCluster(t, nil)
	const paths = 300
	want := make([]string, 0, paths)
	for i := 0; i < paths; i++ {
		p := fmt.Sprintf("/c1/d/%04d", i)
		if _, err := tc.put(t, p, []byte("v")); err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		want = append(want, p)
	}
	// Outside the prefix, on both sides.
	for _, p := range []string{"/c1/c", "/c1/e"} {
		if _, err := tc.put(t, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		dst   netip.AddrPort
		limit int
	}{
		{"member", tc.meps[0].Addr(), 0},
		{"member limit 7", tc.meps[0].Addr(), 7},
		{"router", tc.rep.Addr(), 0},
		{"router limit 1", tc.rep.Addr(), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, pages := nsListAll(t, tc.client, c.dst, "/c1/d/", c.limit)
			if len(got) != len(want) {
				t.Fatalf("listed %d paths in %d pages, want %d", len(got), pages, len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("path %d: %q, want %q", i, got[i], want[i])
				}
			}
			if pages < 2 {
				t.Fatalf("%d paths in %d page", len(got), pages)
			}
		})
	}
}

// TestNSListPageBound: an ns-list page over a full namespace examines at
// most one path more than it returns, wherever it starts: the first path
// is found by binary search, not by walking the namespace.
func TestNSListPageBound(t *testing.T) {
	m := NewMember(MemberConfig{Active: true})
	const n = DefaultMemberMaxEntries - 1
	m.ns.Lock()
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("/d/%06d", i)
		m.ns.m[p] = nsEntry{value: []byte("v"), version: uint64(i + 1)}
		m.ns.keys = append(m.ns.keys, p)
	}
	m.ns.Unlock()
	for _, c := range []struct {
		name, prefix, after string
		limit               uint64
		first               string
		paths, examined     int
		more                bool
	}{
		{"first, limit 1", "/", "", 1, "/d/000000", 1, 2, true},
		{"after the cursor", "/d/", "/d/040000", 3, "/d/040001", 3, 4, true},
		{"cursor not a path", "/d/", "/d/04000", 2, "/d/040000", 2, 3, true},
		{"last page", "/d/", fmt.Sprintf("/d/%06d", n-3), 0, fmt.Sprintf("/d/%06d", n-2), 2, 2, false},
		{"empty prefix range", "/e/", "", 0, "", 0, 0, false},
		{"full page", "/d/", "/d/000100", 0, "/d/000101", wire.MaxParams - 1, wire.MaxParams, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ps wire.Params
			ps.Reset(make([]byte, wire.DefaultMaxDatagram-wire.HeaderSize))
			examined := m.listPage(c.prefix, c.after, c.limit, ps.Cap(), &ps)
			if ps.Err() != wire.OK {
				t.Fatal(ps.Err())
			}
			var vs []wire.Value
			for w := wire.Walk(ps.Segment()); ; {
				v, ok := w.Next()
				if !ok {
					break
				}
				vs = append(vs, v)
			}
			paths := len(vs) - 1
			more := vs[0].Uint64() == 1
			if examined != c.examined || paths != c.paths || more != c.more || (paths > 0 && vs[1].Str() != c.first) {
				t.Fatalf("examined %d, %d paths, more %v; want %d, %d, %v", examined, paths, more, c.examined, c.paths, c.more)
			}
		})
	}
}

// TestNSListKeysFollowWrites: puts and deletes of random paths keep the
// member's sorted paths equal to its namespace, and a listing through
// the cursor returns exactly the paths of a reference map, in order.
func TestNSListKeysFollowWrites(t *testing.T) {
	tc := newTestCluster(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	ref := map[string]bool{}
	for i := 0; i < 600; i++ {
		p := fmt.Sprintf("/c1/r/%03d", rng.IntN(200))
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.String(p)
		no := CallNSPut
		if rng.IntN(3) == 0 {
			no = CallNSDelete
		} else {
			ps.Bytes([]byte("v"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := tc.client.Call(ctx, tc.meps[0].Addr(), no, &ps, nil)
		cancel()
		switch {
		case no == CallNSPut && err == nil:
			ref[p] = true
		case no == CallNSDelete && (err == nil || err == wire.ENOENT && !ref[p]):
			delete(ref, p)
		default:
			t.Fatalf("call %#x %s: %v", no, p, err)
		}
	}
	m := tc.members[0]
	m.ns.RLock()
	keys := slices.Clone(m.ns.keys)
	inMap := len(m.ns.m)
	m.ns.RUnlock()
	want := slices.Sorted(maps.Keys(ref))
	if !slices.Equal(keys, want) || inMap != len(want) {
		t.Fatalf("member holds %d sorted paths, %d in its map; want %d", len(keys), inMap, len(want))
	}
	got, _ := nsListAll(t, tc.client, tc.meps[0].Addr(), "/c1/r/", 5)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d paths, want %d", len(got), len(want))
	}
}

// TestNSListUnpadded: a page whose reply room cannot hold its first path
// (a request without padding, in checksum mode) is refused EMSGSIZE, not
// answered "more" with no path to resume after.
func TestNSListUnpadded(t *testing.T) {
	tc := newTestCluster(t, nil)
	long := "/c1/" + strings.Repeat("p", 400)
	if _, err := tc.put(t, long, nil); err != nil {
		t.Fatal(err)
	}
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.String("/c1/")
	ps.String("")
	ps.Uint64(0)
	ps.Bytes(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := tc.client.Call(ctx, tc.meps[0].Addr(), CallNSList, &ps, nil); err != wire.EMSGSIZE {
		t.Fatalf("unpadded ns-list of a %d-byte path: %v, want EMSGSIZE", len(long), err)
	}
}

// TestNSListPartlyPaddedThroughRouter: an ns-list through the router
// whose request is padded for a few paths (checksum mode) gets a page of
// the paths its own reply room holds, as from the member directly. The
// member sized the page by the forwarded request, which is longer by the
// client context, and the router could not fit it in the client's reply:
// the client got EMSGSIZE for a page of paths its room held.
func TestNSListPartlyPaddedThroughRouter(t *testing.T) {
	tc := newTestCluster(t, nil)
	for i := 0; i < 40; i++ {
		if _, err := tc.put(t, fmt.Sprintf("/c1/k%02d-%s", i, strings.Repeat("a", 20)), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range []netip.AddrPort{tc.meps[0].Addr(), tc.rep.Addr()} {
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.String("/c1/")
		ps.String("")
		ps.Uint64(0)
		ps.Bytes(make([]byte, 40))
		var rep rfc.Reply
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := tc.client.Call(ctx, dst, CallNSList, &ps, &rep)
		cancel()
		if err != nil {
			t.Fatalf("ns-list at %v: %v", dst, err)
		}
		if rep.NParams() < 2 || rep.Param(0).Uint64() != 1 {
			t.Fatalf("ns-list at %v: %d parameters, more %d; want a cut page", dst, rep.NParams(), rep.Param(0).Uint64())
		}
	}
}
