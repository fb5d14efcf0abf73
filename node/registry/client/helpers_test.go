package client

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// newClient is a client with test-sized timers.
func newClient(t testing.TB, ep *rfc.Endpoint, centers ...netip.AddrPort) *Client {
	t.Helper()
	cfg := DefaultClientConfig(centers...)
	cfg.AttemptTimeout = 200 * time.Millisecond
	cfg.KeepaliveEvery = 50 * time.Millisecond
	c, err := NewClient(ep, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// syncedWatch watches prefixes through cl until the watch has synced; its
// changes arrive on the channel (up to 64 unread, later ones dropped),
// and it is closed when the test ends.
func syncedWatch(t testing.TB, cl *Client, prefixes ...string) (*Watch, chan Change) {
	t.Helper()
	changes := make(chan Change, 64)
	w, err := cl.Watch(prefixes, func(c Change) {
		select {
		case changes <- c:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if !rfctest.WaitFor(10*time.Second, w.Synced) {
		t.Fatal("watch never synced")
	}
	return w, changes
}

// singleClient starts one center (centertest.StartSingle), closed when the
// test ends, and returns a client of it on a new endpoint (node 7).
func singleClient(t testing.TB) *Client {
	t.Helper()
	s := centertest.StartSingle(1)
	t.Cleanup(func() { s.Close() })
	return newClient(t, regtest.Endpoint(t, 7, ""), s.Addr())
}
