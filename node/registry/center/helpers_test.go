package center

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/node/registry/agent"
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

// startAgent starts an agent on ep that writes the map at path and is fed
// by centers, with the quiet logger and what mod changes; it is closed
// when the test ends.
func startAgent(t testing.TB, ep *rfc.Endpoint, path string, centers []netip.AddrPort, mod func(c *agent.AgentConfig)) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultAgentConfig(path, centers...)
	cfg.Logger = rfctest.Quiet
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.StartAgent(ep, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
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

// startLone starts one center, with cfg, on a new endpoint (node 100),
// with no other center running; it is closed when the test ends.
func startLone(t testing.TB, cfg Config) *Center {
	t.Helper()
	return startCenterOn(t, regtest.Endpoint(t, 100, ""), cfg)
}

// startCenterOn starts a center with cfg on ep; it is closed when the test
// ends.
func startCenterOn(t testing.TB, ep *rfc.Endpoint, cfg Config) *Center {
	t.Helper()
	c, err := StartCenter(ep, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
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
	return startCenterOn(t, regtest.Endpoint(t, 100, addr.String()), cfg)
}
