package main

import (
	"fmt"
	"net/netip"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
)

// fastcallCluster is N node/heartbeat services, each on its own endpoint,
// each given every other member's address at start.
type fastcallCluster struct {
	eps  []*rfc.Endpoint
	svcs []*heartbeat.Service
}

func startFastcall(n int, interval time.Duration) (cluster, error) {
	c := &fastcallCluster{}
	addrs := make([]netip.AddrPort, 0, n)
	for i := 0; i < n; i++ {
		// A member that runs only the heartbeat: the engine's queues and
		// caches sized for it, so that 256 endpoints fit one process.
		cfg := heartbeat.LightEngine(rfc.DefaultConfig())
		cfg.NodeID = uint32(i + 1)
		cfg.Logger = quiet
		cfg.MaxPeers = 1024
		ep, err := rfc.Listen(cfg)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.eps = append(c.eps, ep)
		addrs = append(addrs, ep.Addr())
	}
	hc := heartbeat.DefaultConfig().WithInterval(interval)
	hc.Logger = quiet
	for _, ep := range c.eps {
		svc, err := heartbeat.Start(ep, hc, addrs)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.svcs = append(c.svcs, svc)
	}
	return c, nil
}

func (c *fastcallCluster) counters() (sent, deaths, suspects uint64) {
	for i, ep := range c.eps {
		sent += ep.Stats().Tx
		st := c.svcs[i].Stats()
		deaths += st.Deaths
		suspects += st.Suspects
	}
	return
}

// detail sums the heartbeat and engine counters that explain the
// datagram count.
func (c *fastcallCluster) detail() string {
	var probes, fails, skipped, ind, rel, retrans, upd uint64
	for i, ep := range c.eps {
		st := c.svcs[i].Stats()
		probes += st.Probes
		fails += st.ProbeFails
		skipped += st.ProbesSkipped
		ind += st.IndirectSent
		rel += st.Relayed
		upd += st.UpdatesSent
		for _, cc := range ep.Stats().Called {
			retrans += cc.Retrans
		}
	}
	return fmt.Sprintf("probes %d fails %d skipped %d indirect %d relayed %d retransmissions %d updates %d",
		probes, fails, skipped, ind, rel, retrans, upd)
}

func (c *fastcallCluster) notAlive() int {
	n := 0
	for _, s := range c.svcs {
		for _, m := range s.Members() {
			if m.State != heartbeat.StateAlive {
				n++
			}
		}
	}
	return n
}

// stop closes the endpoints first, so that no service sees the others
// close one by one, then the services.
func (c *fastcallCluster) stop() {
	for _, ep := range c.eps {
		ep.Close()
	}
	for _, s := range c.svcs {
		s.Close()
	}
}
