package main

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
)

// fastcallCluster is N node/heartbeat services, each on its own endpoint,
// each given every other member's address at start.
type fastcallCluster struct {
	eps  []*rfc.Endpoint
	svcs []*heartbeat.Service

	lastProbes, lastFails, lastBusy, lastExpired uint64 // progressDetail's previous sums
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
	var probes, fails, skipped, ind, rel, retrans, upd, wakes uint64
	for i, ep := range c.eps {
		st := c.svcs[i].Stats()
		wakes += st.Wakes
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
	var rtt rfc.Latency
	errs := map[string]uint64{}
	drops := map[string]uint64{}
	var health [8]int
	for i, ep := range c.eps {
		st := ep.Stats()
		for _, cc := range st.Called {
			if cc.CallNo != heartbeat.CallHeartbeat {
				continue
			}
			for j := range rtt.Counts {
				rtt.Counts[j] += cc.Latency.Counts[j]
			}
			rtt.Count += cc.Latency.Count
			for e, v := range cc.Errors {
				errs[e.String()] += v
			}
		}
		for k, v := range st.Drops {
			drops[k] += v
		}
		health[min(c.svcs[i].Stats().Health, len(health)-1)]++
	}
	var ds []string
	for k, v := range drops {
		ds = append(ds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ds)
	var es []string
	for k, v := range errs {
		es = append(es, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(es)
	return fmt.Sprintf("probes %d fails %d skipped %d indirect %d relayed %d retransmissions %d updates %d probe-loop wake-ups %d; "+
		"probe round trip p50 <%s p99 <%s p999 <%s; probe errors %s; engine drops %s; members by local health 0..7 %v",
		probes, fails, skipped, ind, rel, retrans, upd, wakes, quantile(&rtt, 0.5), quantile(&rtt, 0.99), quantile(&rtt, 0.999),
		strings.Join(es, " "), strings.Join(ds, " "), health)
}

// quantile is the bucket bound below which fraction q of the calls in l
// took, or "inf" past the last bucket.
func quantile(l *rfc.Latency, q float64) string {
	want := uint64(q * float64(l.Count))
	for i, n := range l.Counts {
		if n >= want {
			return time.Duration(rfc.LatencyBoundUs(i) * 1000).String()
		}
	}
	return "inf"
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

// progressDetail is the probes and failed probes since the last call,
// the engine's busy and expired drops, and the members by local health.
func (c *fastcallCluster) progressDetail() string {
	var probes, fails, busy, expired uint64
	var health [8]int
	for i, ep := range c.eps {
		st := c.svcs[i].Stats()
		probes += st.Probes
		fails += st.ProbeFails
		health[min(st.Health, len(health)-1)]++
		for _, d := range ep.Drops() {
			switch d.Reason {
			case "busy":
				busy += d.Count
			case "expired":
				expired += d.Count
			}
		}
	}
	s := fmt.Sprintf("probes %d failed %d busy %d expired %d health %v", probes-c.lastProbes, fails-c.lastFails,
		busy-c.lastBusy, expired-c.lastExpired, health)
	c.lastProbes, c.lastFails, c.lastBusy, c.lastExpired = probes, fails, busy, expired
	return s
}
