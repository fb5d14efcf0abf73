package client

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
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
