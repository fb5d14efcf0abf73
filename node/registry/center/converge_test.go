package center

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/node/registry/agent"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
	"fastcall/shm"
)

// liveState returns the center's live entries under prefix.
func (c *Center) liveState(prefix string) map[string][]byte {
	nowMs := time.Now().UnixMilli()
	out := map[string][]byte{}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.st.scan(prefix, "", func(k string, e *entry) bool {
		if e.live(nowMs) {
			out[k] = e.rec
		}
		return true
	})
	return out
}

// mapState returns the map's entries under prefix.
func mapState(t testing.TB, m *shm.Map, prefix string) map[string][]byte {
	out := map[string][]byte{}
	if err := m.Prefix([]byte(prefix), func(k, v []byte) bool {
		out[string(k)] = append([]byte(nil), v...)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameState(a, b map[string][]byte) (string, bool) {
	for k, v := range a {
		if !bytes.Equal(b[k], v) {
			return k, false
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return k, false
		}
	}
	return "", true
}

// TestSubscribersConvergeUnderLoss runs agents on several nodes, each
// reaching the centers through a relay that loses and duplicates 10% of
// the datagrams each way, while a writer puts and deletes keys at both
// centers: every agent's map converges to the centers' state.
func TestSubscribersConvergeUnderLoss(t *testing.T) {
	p := startPair(t, nil)
	const nodes = 3
	var agents []*agent.Agent
	for i := 0; i < nodes; i++ {
		var relays []netip.AddrPort
		for j, addr := range p.Addrs() {
			r, err := simnet.NewRelay(addr, simnet.RelayConfig{Faults: simnet.Faults{Loss: 0.10, Dup: 0.10}, Seed: uint64(10*i + j + 1)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Close)
			relays = append(relays, r.Addr())
		}
		ep := regtest.Endpoint(t, uint32(10+i), "")
		agents = append(agents, startAgent(t, ep, filepath.Join(t.TempDir(), "node.map"), relays, func(c *agent.AgentConfig) {
			c.Prefixes = []string{"kv/conv/"}
			c.AttemptTimeout = 200 * time.Millisecond
			c.KeepaliveEvery = 50 * time.Millisecond
		}))
	}
	writers := []*client.Client{newClient(t, regtest.Endpoint(t, 7, ""), p.Addrs()[0]), newClient(t, regtest.Endpoint(t, 8, ""), p.Addrs()[1])}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := rfctest.Context(t, 20*time.Second)
	for i := 0; i < 300; i++ {
		w := writers[rng.IntN(2)]
		k := fmt.Sprintf("conv/%02d", rng.IntN(40))
		if rng.IntN(4) == 0 {
			w.Delete(ctx, k, 0)
		} else {
			w.Put(ctx, k, []byte(fmt.Sprintf("v%d", i)), 0)
		}
	}
	want := p.Cs[0].liveState("kv/conv/")
	if k, ok := sameState(want, p.Cs[1].liveState("kv/conv/")); !ok {
		t.Fatalf("centers differ at %s", k)
	}
	for i, a := range agents {
		var bad string
		if !rfctest.WaitFor(10*time.Second, func() bool {
			var ok bool
			bad, ok = sameState(want, mapState(t, a.Map(), "kv/conv/"))
			return ok
		}) {
			t.Fatalf("agent %d did not converge (key %s), stats %+v", i, bad, a.Watch().Stats())
		}
		t.Logf("agent %d: %+v", i, a.Watch().Stats())
	}
}

// TestDeadNodeRemoved kills a node (its endpoint goes silent): the
// heartbeat service declares it dead and its instances disappear from
// every other node's map within the detection bound, long before their
// lease would have expired them. In a synctest bubble on rfc/simnet (no
// delay): the heartbeat runs at its default interval in virtual time,
// and the bound is checked exactly.
func TestDeadNodeRemoved(t *testing.T) { rfctest.InSim(t, deadNodeRemoved) }

func deadNodeRemoved(t *testing.T, s *rfctest.Sim) {
	p := startSimPair(t, s, nil)
	hc := heartbeat.DefaultConfig()
	hc.Logger = rfctest.Quiet
	const lease = time.Minute
	const nodes = 3
	var eps []*rfc.Endpoint
	for i := 0; i < nodes; i++ {
		eps = append(eps, s.Listen(uint32(10+i), nil))
	}
	members := append(p.Addrs(), eps[0].Addr(), eps[1].Addr(), eps[2].Addr())
	for _, ep := range append([]*rfc.Endpoint{p.EPs[0], p.EPs[1]}, eps...) {
		svc, err := heartbeat.Start(ep, hc, members)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(svc.Close)
	}
	var agents []*agent.Agent
	for i, ep := range eps {
		a := startAgent(t, ep, filepath.Join(t.TempDir(), "node.map"), p.Addrs(), func(c *agent.AgentConfig) {
			c.KeepaliveEvery = 50 * time.Millisecond
		})
		agents = append(agents, a)
		if err := a.Register(rfctest.Context(t, 10*time.Second), "worker", fmt.Sprintf("127.0.0.1:%d", 7000+i), nil, lease); err != nil {
			t.Fatal(err)
		}
	}
	count := func(a *agent.Agent) int { return len(mapState(t, a.Map(), sdk.ServiceNamePrefix("worker"))) }
	for i, a := range agents {
		if !rfctest.WaitFor(10*time.Second, func() bool { return count(a) == nodes }) {
			t.Fatalf("agent %d sees %d instances", i, count(a))
		}
	}
	victim := sdk.ServiceKey("worker", 12)
	agents[2].Close()
	eps[2].Close()
	start := time.Now()
	bound := heartbeat.DetectBoundAt(hc, len(members))
	for i, a := range agents[:2] {
		if !rfctest.WaitFor(lease/2, func() bool {
			_, ok := mapState(t, a.Map(), victim)[victim]
			return !ok
		}) {
			t.Fatalf("agent %d still sees the dead node's instance", i)
		}
		if count(a) != nodes-1 {
			t.Fatalf("agent %d sees %d instances", i, count(a))
		}
	}
	if took := time.Since(start); took > bound {
		t.Fatalf("removed from every map %v after the node went silent, detection bound %v", took, bound)
	}
	t.Logf("removed from every map after %v (detection bound %v)", time.Since(start), bound)
}
