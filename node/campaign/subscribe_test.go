package campaign

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"fastcall/node/registry/agent"
	regcenter "fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/registrytest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// TestSubscriptionExhaustion: many source ports of one address open push
// streams at a registry center and never renew them; real agents, on
// another address and on the flooded one, still get the registered
// instance into their maps.
func TestSubscriptionExhaustion(t *testing.T) {
	center := startCenter(t, 70, keyFile(t))

	// An instance is keyed by its node id.
	ep := rfctest.Listen(t, 42, func(c *rfc.Config) { c.Key = testKey })
	cli, err := client.NewClient(ep, client.DefaultClientConfig(center.addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := cli.Register(ctx, "db", "10.0.0.1:5432", nil, 5*time.Minute); err != nil {
		t.Fatal(err)
	}

	ports, perPort := scale(128), 4
	granted := registrytest.SubscribeFlood(t, center.addr, "127.0.0.1", testKey, ports, perPort)
	if granted > regcenter.DefaultMaxStreamsPerIP {
		t.Fatalf("the flood was granted %d streams from one address", granted)
	}
	flooded := time.Now()

	// agentGets starts an agent on ip and returns how long after the
	// flood its map held the instance, or fails.
	agentGets := func(ip string, within time.Duration) time.Duration {
		cfg := rfctest.Config(0)
		cfg.Key = testKey
		cfg.Addr = ip + ":0"
		aep, err := rfc.Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer aep.Close()
		path := filepath.Join(t.TempDir(), "agent.map")
		acfg := agent.DefaultAgentConfig(path, center.addr)
		acfg.Logger = rfctest.Quiet
		a, err := agent.StartAgent(aep, acfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := waitInstance(t, path, "db", "10.0.0.1:5432", within); err != nil {
			t.Fatalf("agent on %s: %v (watch error %v)", ip, err, a.Watch().Err())
		}
		return time.Since(flooded)
	}
	other := agentGets("127.0.0.2", 5*time.Second)
	same := agentGets("127.0.0.1", 3*regcenter.DefaultStreamIdle)

	record(t, row{
		Fault: "push-subscription exhaustion",
		Params: fmt.Sprintf("one center (rfcd, keyed, default bounds: %d streams per address, %d per IP address, %d in all; a stream expires %v after its last renewal); "+
			"%d source ports of 127.0.0.1 × %d subscriptions on a prefix that never matches, never renewed",
			regcenter.DefaultMaxStreamsPerNode, regcenter.DefaultMaxStreamsPerIP, regcenter.DefaultMaxStreams, regcenter.DefaultStreamIdle, ports, perPort),
		Load:    fmt.Sprintf("%d subscriptions, one at a time", ports*perPort),
		Checked: "an agent on another address (127.0.0.2), then one on the flooded address, each get the registered instance into their shm map",
		Result: fmt.Sprintf("pass: flood granted %d streams; agent on 127.0.0.2 had the instance %d ms after the flood, agent on 127.0.0.1 %d ms after it (its streams expired first)",
			granted, other.Milliseconds(), same.Milliseconds()),
	})
}
