// Package centertest starts real centers for the tests of the packages
// that talk to them (client, agent); the center's own tests start theirs
// with their own timers.
package centertest

import (
	"net/netip"
	"testing"

	"fastcall/node/registry/center"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// Config is a center's default configuration for dir, logging nothing.
func Config(dir string) center.Config {
	cfg := center.DefaultConfig(dir)
	cfg.Logger = rfctest.Quiet
	return cfg
}

// StartPair starts two centers with Config that are each other's peer
// and waits until both serve (regtest.StartPair).
func StartPair(t testing.TB) *regtest.Pair[*center.Center] {
	t.Helper()
	return regtest.StartPair(t, func(i int, ep *rfc.Endpoint, dir string, peer netip.AddrPort) (*center.Center, error) {
		cfg := Config(dir)
		cfg.Index, cfg.Peer = uint8(i), peer
		return center.StartCenter(ep, cfg)
	})
}
