package client

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/center"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestWatchTakesReissuedVersion: a watch holds a record that its center
// lost in a crash; the restarted center makes the same version number
// for another record. The watch's resynchronization must take the
// center's record, not keep its own because the version numbers match.
func TestWatchTakesReissuedVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "center")
	ep := regtest.Endpoint(t, 100, "")
	addr := ep.Addr()
	cfg := centertest.Config(dir)
	c, err := center.StartCenter(ep, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wcfg := DefaultClientConfig(addr)
	wcfg.AttemptTimeout = 200 * time.Millisecond
	wcfg.KeepaliveEvery = time.Hour // resynchronizations only when the test asks
	wc, err := NewClient(regtest.Endpoint(t, 9, ""), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	w, err := wc.Watch([]string{sdk.KVPrefix}, func(ch Change) {
		var r sdk.Record
		mu.Lock()
		defer mu.Unlock()
		if ch.Deleted || sdk.ParseRecord(ch.Record, &r) != wire.OK {
			delete(seen, ch.Key)
			return
		}
		seen[ch.Key] = string(r.Body)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	value := func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen["kv/k"]
	}
	cl := newClient(t, regtest.Endpoint(t, 7, ""), addr)
	ctx := rfctest.Context(t, 20*time.Second)
	logPath := filepath.Join(dir, center.LogName)
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "k", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return value() == "a" }) {
		t.Fatal("the watch did not see the first write")
	}
	c.Close()
	ep.Close()
	if err := os.Truncate(logPath, fi.Size()); err != nil {
		t.Fatal(err)
	}
	c, err = center.StartCenter(regtest.Endpoint(t, 100, addr.String()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := cl.Put(ctx, "k", []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	resyncs := w.Stats().Resyncs
	w.kickResync()
	if !rfctest.WaitFor(5*time.Second, func() bool { st := w.Stats(); return st.Resyncs > resyncs && st.Synced }) {
		t.Fatal("the watch did not resynchronize")
	}
	if !rfctest.WaitFor(2*time.Second, func() bool { return value() == "b" }) {
		t.Fatalf("the watch keeps %q, the center holds \"b\" under the same version", value())
	}
}

// TestPushOnlyFromItsCenter: a push is taken only from the center the
// stream is subscribed at. Stream ids travel in the clear; before, any
// sender that held the key (any sender at all in checksum mode) and
// named the stream could push a forged record into the watch (an agent's
// map: a service instance of another node, past the centers' write
// rules), and by moving the expected sequence number on, make the
// center's next pushes look like duplicates, which were dropped: a write
// the center acknowledged never reached the watch until a resync.
func TestPushOnlyFromItsCenter(t *testing.T) {
	cl := singleClient(t)
	w, changes := syncedWatch(t, cl, "kv/")
	w.mu.Lock()
	stream, expect := w.mu.stream, w.mu.expect
	w.mu.Unlock()

	// A stranger pushes three forged changes on the stream, numbered
	// from the one the watch expects.
	const forged = 3
	var batch []byte
	for i := 0; i < forged; i++ {
		key := []byte("kv/forged" + string(rune('a'+i)))
		rec := sdk.AppendRecord(nil, &sdk.Record{Kind: sdk.KindKV, Node: 9, Version: 1 << 40, Body: []byte("evil")})
		batch = binary.BigEndian.AppendUint16(batch, uint16(len(key)))
		batch = append(batch, key...)
		batch = binary.BigEndian.AppendUint16(batch, uint16(len(rec)))
		batch = append(batch, rec...)
	}
	stranger := regtest.Endpoint(t, 9, "")
	e := regtest.Call(t, stranger, cl.ep.Addr(), registry.CallPush, func(ps *wire.Params) {
		ps.Uint64(stream)
		ps.Uint64(expect)
		ps.Uint64(forged)
		ps.Bytes(batch)
	})
	if e == wire.OK {
		t.Errorf("forged push from %v answered OK", stranger.Addr())
	}
	// The center's own next pushes still reach the watch.
	ctx := rfctest.Context(t, 5*time.Second)
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, err := cl.Put(ctx, k, []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["kv/d"] {
		select {
		case c := <-changes:
			seen[c.Key] = true
		case <-deadline:
			t.Fatalf("the center's pushes after the forged one did not all reach the watch: saw %v", seen)
		}
	}
	for k := range seen {
		if len(k) > len("kv/forged") && k[:len("kv/forged")] == "kv/forged" {
			t.Errorf("forged change %s applied", k)
		}
	}
	for _, k := range []string{"kv/a", "kv/b", "kv/c"} {
		if !seen[k] {
			t.Errorf("acknowledged write %s never reached the watch", k)
		}
	}
}

// TestResyncsKeepOneStream: a watch that resyncs more times in a row than
// the center allows streams per address still ends subscribed, holding
// one stream, and still receives pushes. Each resync opens a new stream;
// before, the old one stayed at the center, so a few resyncs in a row
// (a restarted center, lists timing out under load) filled the address's
// bound and every later subscription was refused ENOSPC.
func TestResyncsKeepOneStream(t *testing.T) {
	p := centertest.StartPair(t)
	ep := regtest.Endpoint(t, 300, "127.0.0.1:0")
	cl := newClient(t, ep, p.Addrs()...)
	w, changes := syncedWatch(t, cl, "kv/")
	w.mu.Lock()
	center := w.mu.center
	w.mu.Unlock()
	bound := p.Cs[center].Config().MaxStreamsPerNode
	for i := 0; i < 2*bound; i++ {
		// A resync answers EAGAIN when the watch's own loop resynced
		// meanwhile (its stream id changed under it): that resync still
		// opened a stream, so it counts; try again, boundedly.
		e := w.resync()
		for try := 0; e == wire.EAGAIN && try < 20; try++ {
			e = w.resync()
		}
		if e != wire.OK {
			t.Fatalf("resync %d of %d: %v (center streams %d, refused %d)", i+1, 2*bound, e,
				p.Cs[center].Stats().Streams, p.Cs[center].Stats().SubscribeRefused)
		}
	}
	// An unsubscribe whose attempt timed out on a loaded host may still
	// reach the center a moment later.
	if !rfctest.WaitFor(10*time.Second, func() bool { return p.Cs[center].Stats().Streams == 1 }) {
		t.Fatalf("center holds %d streams after %d resyncs, want 1", p.Cs[center].Stats().Streams, 2*bound)
	}
	if _, err := cl.Put(rfctest.Context(t, 5*time.Second), "a", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-changes:
			if c.Key == "kv/a" {
				return
			}
		case <-deadline:
			t.Fatal("no push for kv/a after the resyncs")
		}
	}
}

// TestWatchRefusesStuckListing: a watch's first listing follows the
// listing's next key from a center; a page whose next key does not move
// on is refused (EPROTO, counted as malformed) and the resynchronization
// fails, instead of listing the same page without end. Before, the watch
// paged through the fake center's stuck pages until the fake gave up and
// then reported itself synced.
func TestWatchRefusesStuckListing(t *testing.T) {
	const stuckPages = 2000
	fake, pages := stuckCenter(t, stuckPages)
	cl := newClient(t, regtest.Endpoint(t, 7, ""), fake.Addr())
	w, err := cl.Watch([]string{sdk.KVPrefix}, func(Change) {})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !rfctest.WaitFor(30*time.Second, func() bool { st := w.Stats(); return st.Malformed > 0 || st.Synced }) {
		t.Fatalf("watch neither refused nor finished the listing: %d pages listed", pages.Load())
	}
	if st := w.Stats(); st.Synced || st.Malformed == 0 {
		t.Fatalf("watch synced %v, malformed %d after %d pages: it followed a next key that does not move on",
			st.Synced, st.Malformed, pages.Load())
	}
}

// TestWatchLeavesStuckCenter: a center whose listing does not move on
// (EPROTO) has failed the watch as a dead one has: the watch's next
// resynchronization goes to the other center, and syncs there. Before,
// it tried the stuck center again at every keepalive and never synced.
func TestWatchLeavesStuckCenter(t *testing.T) {
	fake, pages := stuckCenter(t, 1<<40)
	good := centertest.StartSingle(1)
	t.Cleanup(func() { good.Close() })
	cl := newClient(t, regtest.Endpoint(t, 7, ""), fake.Addr(), good.Addr())
	direct := newClient(t, regtest.Endpoint(t, 8, ""), good.Addr())
	if _, err := direct.Put(rfctest.Context(t, 10*time.Second), "a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	_, changes := syncedWatch(t, cl, sdk.KVPrefix)
	if pages.Load() == 0 {
		t.Fatal("the watch did not start at the stuck center")
	}
	if ch := <-changes; ch.Key != "kv/a" {
		t.Fatalf("first change %+v, want kv/a from the other center", ch)
	}
}

// stuckCenter is a fake center on a new endpoint (node 100) that answers
// subscribes and keepalives and lists as regtest.StuckList does, for
// pages pages, whose count it returns.
func stuckCenter(t *testing.T, pages int64) (*rfc.Endpoint, *atomic.Int64) {
	t.Helper()
	fake := regtest.Endpoint(t, 100, "")
	n := regtest.StuckList(t, fake, pages)
	ok := func(req *rfc.Request, rep *wire.Params) wire.Errno { return wire.OK }
	err := fake.RegisterCalls([]rfc.CallSpec{
		{No: registry.CallSubscribe, Name: "reg-subscribe", Schema: registry.SchemaSubscribe, Flags: rfc.Idempotent,
			H: func(req *rfc.Request, rep *wire.Params) wire.Errno {
				rep.Uint64(1) // first sequence number
				rep.Uint64(7) // cookie
				return wire.OK
			}},
		{No: registry.CallSubCheck, Name: "reg-subcheck", Schema: registry.SchemaSubCheck, Flags: rfc.Idempotent, H: ok},
		{No: registry.CallUnsubscribe, Name: "reg-unsubscribe", Schema: registry.SchemaUnsubscribe, Flags: rfc.Idempotent, H: ok},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fake, n
}
