package heartbeat

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// TestLightEngine: LightEngine keeps what it does not size (node id,
// logger, peers), shrinks the engine below rfc's defaults, and members on
// such endpoints hear each other.
func TestLightEngine(t *testing.T) {
	def := rfctest.Config(5)
	def.MaxPeers = 77
	cfg := LightEngine(def)
	if cfg.NodeID != 5 || cfg.Logger != rfctest.Quiet || cfg.MaxPeers != 77 || cfg.Addr != def.Addr {
		t.Fatalf("LightEngine changed a field it does not size: %+v", cfg)
	}
	if cfg.Workers > def.Workers || cfg.QueueLen > def.QueueLen || cfg.MaxPending > def.MaxPending || cfg.DupEntries > def.DupEntries {
		t.Fatalf("LightEngine grew the engine: %+v from %+v", cfg, def)
	}
	const n = 3
	eps := make([]*rfc.Endpoint, n)
	addrs := make([]netip.AddrPort, n)
	for i := range eps {
		eps[i] = newEndpoint(t, uint32(i+1), func(c *rfc.Config) { *c = LightEngine(*c) })
		addrs[i] = eps[i].Addr()
	}
	nodes := make([]*node, n)
	for i := range eps {
		nodes[i] = startNode(t, eps[i], testConfig(), addrs)
	}
	for i, x := range nodes {
		for j, a := range addrs {
			if i != j {
				waitHeard(t, x, a, 10*time.Second)
			}
		}
	}
}
