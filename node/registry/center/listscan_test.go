package center

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// Tombstones of a prefix listed without them: a page examines a bounded
// number of entries under the center's lock and tells the client where to
// resume.
const (
	deadKeys = 60000 // tombstones under kv/t/, below the live keys
	liveKeys = 40    // live keys under kv/t/, more than one page
)

// deadKey is the i-th tombstone's key; liveKey the i-th live key's, after
// every tombstone in key order.
func deadKey(i int) string { return fmt.Sprintf("kv/t/%08d", i) }
func liveKey(i int) string { return fmt.Sprintf("kv/t/live-%03d", i) }

// startTombstoned starts a lone center holding deadKeys tombstones under
// kv/t/ (set in its store directly) and liveKeys live entries after them
// (put by a client), and returns the center and a client of it.
func startTombstoned(t *testing.T) (*Center, *client.Client) {
	t.Helper()
	c := startLone(t, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
	expire := time.Now().Add(time.Hour).UnixMilli()
	c.mu.Lock()
	for i := 0; i < deadKeys; i++ {
		rec := sdk.AppendRecord(nil, &sdk.Record{Kind: sdk.KindTombstone, Version: 1})
		c.mu.st.set(deadKey(i), &entry{rec: rec, version: 1, kind: sdk.KindTombstone, expireMs: expire})
	}
	c.mu.Unlock()
	cli := newClient(t, regtest.Endpoint(t, 8, ""), c.Endpoint().Addr())
	// Generous: the maintenance sweep walks the tombstones under the
	// center's lock, and under -race on a loaded host a put may wait
	// 100 ms or more for it.
	ctx := rfctest.Context(t, 60*time.Second)
	for i := 0; i < liveKeys; i++ {
		if _, err := cli.Put(ctx, strings.TrimPrefix(liveKey(i), sdk.KVPrefix), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	return c, cli
}

// TestListPageStopsInTombstones: a reg-list page of a prefix that holds
// deadKeys tombstones before its live keys, without tombstones, stops
// within the tombstones with no entry and a resume key among them, instead
// of scanning every one of them under the center's lock to reach the live
// keys.
func TestListPageStopsInTombstones(t *testing.T) {
	c, _ := startTombstoned(t)
	ep := regtest.Endpoint(t, 9, "")
	var rep rfc.Reply
	if err := registry.ListCall(rfctest.Context(t, 60*time.Second), ep, c.Endpoint().Addr(), "kv/t/", "", 0, 0, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.NParams() < 2 || rep.Param(0).Type != wire.TypeUint64 || rep.Param(1).Type != wire.TypeString {
		t.Fatalf("reply of %d parameters: want u64 more, str resume key", rep.NParams())
	}
	more, next := rep.Param(0).Uint64(), rep.Param(1).Str()
	if more != 1 || next >= liveKey(0) || next < deadKey(0) {
		t.Fatalf("first page: more %d, resume after %q (%d parameters): the page examined every tombstone", more, next, rep.NParams())
	}
	if rep.NParams() != 2 {
		t.Fatalf("first page returned %d entries of tombstones", (rep.NParams()-2)/2)
	}
}

// TestListPageBound: listPage examines at most registry.ListScan keys. Over
// the tombstones, without them, it returns no entry, examines exactly the
// bound and resumes after the last tombstone it skipped; with them, it
// returns a full page and examines only those; from just before the live
// keys, it returns live keys and resumes after its last entry.
func TestListPageBound(t *testing.T) {
	c, _ := startTombstoned(t)
	nowMs := time.Now().UnixMilli()
	room := wire.DefaultMaxDatagram - wire.HeaderSize - registry.ParamU64Size - wire.ParamHdrSize
	c.mu.Lock()
	defer c.mu.Unlock()
	pg := listPage(c.mu.st, "kv/t/", "", registry.MaxListEntries, false, nowMs, room)
	if pg.examined != registry.ListScan || !pg.more || !pg.skipped || len(pg.keys) != 0 || pg.next != deadKey(registry.ListScan-1) {
		t.Fatalf("over tombstones: examined %d, more %v, next %q (skipped %v), %d entries; want %d, true, %q, 0",
			pg.examined, pg.more, pg.next, pg.skipped, len(pg.keys), registry.ListScan, deadKey(registry.ListScan-1))
	}
	pg = listPage(c.mu.st, "kv/t/", "", 5, true, nowMs, room)
	if pg.examined != 5 || !pg.more || pg.skipped || len(pg.keys) != 5 || pg.next != deadKey(4) {
		t.Fatalf("with tombstones: examined %d, more %v, next %q, %d entries", pg.examined, pg.more, pg.next, len(pg.keys))
	}
	pg = listPage(c.mu.st, "kv/t/", deadKey(deadKeys-3), 3, false, nowMs, room)
	if pg.examined != 5 || !pg.more || pg.skipped || len(pg.keys) != 3 || pg.next != liveKey(2) || pg.keys[0] != liveKey(0) {
		t.Fatalf("into the live keys: examined %d, more %v, next %q, entries %q", pg.examined, pg.more, pg.next, pg.keys)
	}
}

// TestListThroughTombstones: a listing of a prefix that holds deadKeys
// tombstones before its live keys returns every live key through the
// client's pages and through the router's reader of the mount table,
// following the pages that hold no entry.
func TestListThroughTombstones(t *testing.T) {
	_, cli := startTombstoned(t)
	ctx := rfctest.Context(t, 60*time.Second)
	var got []string
	after, pages, empty := "", 0, 0
	for {
		es, next, err := cli.List(ctx, "t/", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(es) == 0 {
			empty++
		}
		for _, e := range es {
			got = append(got, sdk.KVPrefix+e.Key)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(got) != liveKeys || got[0] != liveKey(0) || got[liveKeys-1] != liveKey(liveKeys-1) {
		t.Fatalf("listed %d live keys in %d pages, want %d", len(got), pages, liveKeys)
	}
	if want := deadKeys / registry.ListScan; empty < want {
		t.Fatalf("%d empty pages, want at least %d: pages examine more than registry.ListScan keys", empty, want)
	}
	t.Logf("%d pages, %d without entries", pages, empty)
	kvs, err := route.RegistryMounts{C: cli}.List(ctx, "kv/t/")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != liveKeys {
		t.Fatalf("RegistryMounts.List: %d entries, want %d", len(kvs), liveKeys)
	}
}

// TestListLargestEntry: an entry as large as a push datagram allows, its
// key included, lists alone in a page, at a limit of one, whichever page
// it ends.
func TestListLargestEntry(t *testing.T) {
	c := startLone(t, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
	cli := newClient(t, regtest.Endpoint(t, 8, ""), c.Endpoint().Addr())
	ctx := rfctest.Context(t, 60*time.Second)
	key := strings.Repeat("k", registry.MaxKeyLen-len(sdk.KVPrefix+"big/"))
	var val []byte
	for n := registry.MaxEntry(wire.DefaultMaxDatagram); n > 0; n-- {
		val = make([]byte, n)
		if _, err := cli.Put(ctx, "big/"+key, val, 0); err == nil {
			break
		} else if err != wire.EMSGSIZE {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "big/z", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 1} {
		var got []string
		after := ""
		for {
			es, next, err := cli.List(ctx, "big/", after, limit)
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			for _, e := range es {
				got = append(got, e.Key)
			}
			if next == "" {
				break
			}
			after = next
		}
		if len(got) != 2 || got[0] != "big/"+key || got[1] != "big/z" {
			t.Fatalf("limit %d: listed %d keys", limit, len(got))
		}
	}
	t.Logf("largest value: %d bytes under a %d-byte key", len(val), len(sdk.KVPrefix+"big/"+key))
}
