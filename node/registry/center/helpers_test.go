package center

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// testCenterConfig is the default configuration with test-sized timers.
func testCenterConfig(dir string, index uint8, peer netip.AddrPort) Config {
	cfg := DefaultConfig(dir)
	cfg.Index = index
	cfg.Peer = peer
	cfg.Logger = rfctest.Quiet
	cfg.AntiEntropyEvery = 500 * time.Millisecond
	cfg.SweepEvery = 10 * time.Millisecond
	return cfg
}

// pair is two centers on loopback, each with its endpoint.
type pair = regtest.Pair[*Center]

// startPair starts two centers with testCenterConfig, changed by mod.
func startPair(t testing.TB, mod func(i int, c *Config)) *pair {
	t.Helper()
	return regtest.StartPair(t, pairStart(mod))
}

// startSimPair is startPair on the simulated network of s, in its
// synctest bubble.
func startSimPair(t testing.TB, s *rfctest.Sim, mod func(i int, c *Config)) *pair {
	t.Helper()
	return regtest.StartPairOn(t, func(node uint32) *rfc.Endpoint { return s.Listen(node, nil) }, pairStart(mod))
}

// pairStart starts a center of a pair with testCenterConfig, changed by
// mod.
func pairStart(mod func(i int, c *Config)) regtest.StartFunc[*Center] {
	return func(i int, ep *rfc.Endpoint, dir string, peer netip.AddrPort) (*Center, error) {
		cfg := testCenterConfig(dir, uint8(i), peer)
		if mod != nil {
			mod(i, &cfg)
		}
		return StartCenter(ep, cfg)
	}
}

func newClient(t testing.TB, ep *rfc.Endpoint, centers ...netip.AddrPort) *client.Client {
	t.Helper()
	cfg := client.DefaultClientConfig(centers...)
	cfg.AttemptTimeout = 200 * time.Millisecond
	cfg.KeepaliveEvery = 50 * time.Millisecond
	c, err := client.NewClient(ep, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// restartCenter closes c and its endpoint, as a crash that lets the last
// fsync finish, and starts a center with cfg on a new endpoint at the same
// address (node 100), closed when the test ends.
func restartCenter(t testing.TB, c *Center, cfg Config) *Center {
	t.Helper()
	addr := c.Endpoint().Addr()
	c.Close()
	c.Endpoint().Close()
	c2, err := StartCenter(regtest.Endpoint(t, 100, addr.String()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	return c2
}
