package center

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/agent"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/registrytest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// countHandler counts the log records with one message.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// TestSubscriptionExhaustion: streams opened by one IP address and never
// renewed cannot keep a real agent from subscribing. Before, streams
// were bounded only per source address (ip:port) and in all, and never
// expired: 32 ports of one address took the whole table for good, every
// subscription of the agent was refused, its map stayed empty, and
// nothing was logged.
func TestSubscriptionExhaustion(t *testing.T) {
	cases := []struct {
		name     string
		mod      func(*Config)
		agentIP  string
		maxFlood int // streams the flood may be granted
	}{
		// The table holds 128 streams; the flood's address gets at most
		// MaxStreamsPerIP (64) of them; the agent comes from another.
		{"other-address", func(c *Config) { c.MaxStreams = 128 }, "127.0.0.2", DefaultMaxStreamsPerIP},
		// The flood takes the whole table from the agent's own address;
		// its streams expire, not being renewed (some may expire while
		// the flood lasts, making room for more of it).
		{"same-address-expiry", func(c *Config) {
			c.MaxStreams = 32
			c.MaxStreamsPerIP = 128
			c.StreamIdle = 300 * time.Millisecond
		}, "127.0.0.1", 128},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var refusedLogs atomic.Int64
			ep := regtest.Endpoint(t, 100, "127.0.0.1:0")
			cfg := testCenterConfig(t.TempDir(), 0, netip.AddrPort{})
			cfg.Logger = slog.New(countHandler{"registry: subscriptions refused", &refusedLogs})
			tc.mod(&cfg)
			c, err := StartCenter(ep, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			const ports, perPort = 32, 4
			accepted := registrytest.SubscribeFlood(t, ep.Addr(), "127.0.0.1", nil, ports, perPort)
			if accepted > tc.maxFlood || accepted == 0 {
				t.Fatalf("flood: %d streams accepted, want 1..%d", accepted, tc.maxFlood)
			}
			// Every refusal is counted; the log is rate-limited (once per
			// StreamIdle), not a line per refusal.
			refused, logs := c.Stats().SubscribeRefused, refusedLogs.Load()
			if refused != uint64(ports*perPort-accepted) || refused == 0 || logs < 1 || uint64(logs)*8 > refused {
				t.Fatalf("%d of %d refusals counted, logged %d times", refused, ports*perPort-accepted, logs)
			}

			cl := newClient(t, regtest.Endpoint(t, 7, ""), ep.Addr())
			if _, err := cl.Register(rfctest.Context(t, 5*time.Second), "db", "10.0.0.1:5432", nil, time.Minute); err != nil {
				t.Fatal(err)
			}
			path := t.TempDir() + "/agent.map"
			a := startAgent(t, regtest.Endpoint(t, 9, tc.agentIP+":0"), path, []netip.AddrPort{ep.Addr()}, func(c *agent.AgentConfig) {
				c.KeepaliveEvery = 50 * time.Millisecond
			})
			r := regtest.OpenMap(t, path)
			if !rfctest.WaitFor(5*time.Second, func() bool { in, err := r.Lookup("db"); return err == nil && len(in) == 1 }) {
				t.Fatalf("the agent's map did not get the instance (watch error %v, %d streams at the center)",
					a.Watch().Err(), c.Stats().Streams)
			}
		})
	}
}

// TestStreamBelongsToItsAddress: a stream pushes to the address that
// opened it, which no parameter can name; another address using its id
// can neither extend, renew nor close it, even knowing its cookie.
func TestStreamBelongsToItsAddress(t *testing.T) {
	c := startLone(t, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
	ep := c.Endpoint()
	owner := regtest.Endpoint(t, 7, "")
	other := regtest.Endpoint(t, 8, "")
	var cookie uint64
	call := func(from *rfc.Endpoint, no uint16, prefix string) wire.Errno {
		return regtest.Call(t, from, ep.Addr(), no, func(ps *wire.Params) {
			ps.Uint64(77)
			switch no {
			case registry.CallSubscribe:
				ps.String(prefix)
			case registry.CallSubCheck:
				ps.Uint64(cookie)
			}
		})
	}
	if e := call(owner, registry.CallSubscribe, "kv/"); e != wire.OK {
		t.Fatalf("subscribe: %v", e)
	}
	c.push.mu.Lock()
	cookie = c.push.streams[77].cookie
	c.push.mu.Unlock()
	for _, tc := range []struct {
		name string
		no   uint16
		want wire.Errno
	}{
		{"subscribe", registry.CallSubscribe, wire.EINVAL},
		{"subcheck", registry.CallSubCheck, wire.ESTALE},
		{"unsubscribe", registry.CallUnsubscribe, wire.ENOENT},
	} {
		if e := call(other, tc.no, "svc/"); e != tc.want {
			t.Fatalf("%s from another address: %v, want %v", tc.name, e, tc.want)
		}
	}
	// The owner proves the stream only with its cookie.
	proven := func() bool {
		c.push.mu.Lock()
		defer c.push.mu.Unlock()
		return c.push.streams[77].proven
	}
	right := cookie
	cookie = right + 1
	if e := call(owner, registry.CallSubCheck, ""); e != wire.ESTALE || proven() {
		t.Fatalf("subcheck with a wrong cookie: %v, proven %v; want ESTALE, unproven", e, proven())
	}
	cookie = right
	if e := call(owner, registry.CallSubCheck, ""); e != wire.OK || !proven() {
		t.Fatalf("subcheck with the cookie: %v, proven %v; want OK, proven", e, proven())
	}
	c.push.mu.Lock()
	var addr netip.AddrPort
	prefixes := -1
	if s := c.push.streams[77]; s != nil {
		addr, prefixes = s.addr, len(s.prefixes)
	}
	c.push.mu.Unlock()
	if addr != owner.Addr() || prefixes != 1 {
		t.Fatalf("stream pushing to %v with %d prefixes, want %v with one", addr, prefixes, owner.Addr())
	}
}
