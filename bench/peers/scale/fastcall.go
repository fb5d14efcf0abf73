package main

import (
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
		cfg := rfc.DefaultConfig()
		cfg.NodeID = uint32(i + 1)
		cfg.Logger = quiet
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

func (c *fastcallCluster) stop() {
	for _, s := range c.svcs {
		s.Close()
	}
	for _, ep := range c.eps {
		ep.Close()
	}
}
