package client

import (
	"encoding/binary"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestPushOnlyFromItsCenter: a push is taken only from the center the
// stream is subscribed at. Stream ids travel in the clear; before, any
// sender that held the key (any sender at all in checksum mode) and
// named the stream could push a forged record into the watch (an agent's
// map: a service instance of another node, past the centers' write
// rules), and by moving the expected sequence number on, make the
// center's next pushes look like duplicates, which were dropped: a write
// the center acknowledged never reached the watch until a resync.
func TestPushOnlyFromItsCenter(t *testing.T) {
	s := centertest.StartSingle(1)
	defer s.Close()
	cl := newClient(t, regtest.Endpoint(t, 7, ""), s.Addr())
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
