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
	"fastcall/node/registry/client"
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

// TestSubscriptionBound: a node holds at most MaxStreamsPerNode streams of
// at most MaxPrefixesPerNode prefixes each; a subscription past either
// bound is refused ENOSPC, and one to stream id 0 EINVAL.
func TestSubscriptionBound(t *testing.T) {
	p := startPair(t, func(i int, c *Config) { c.MaxPrefixesPerNode = 2; c.MaxStreamsPerNode = 1 })
	ep := regtest.Endpoint(t, 7, "")
	sub := func(id uint64, prefix string) wire.Errno {
		return regtest.Call(t, ep, p.Addrs()[0], registry.CallSubscribe, func(ps *wire.Params) {
			ps.Uint64(id)
			ps.String(prefix)
		})
	}
	cases := []struct {
		name   string
		id     uint64
		prefix string
		want   wire.Errno
	}{
		{"first", 1, "kv/a", wire.OK},
		{"second-prefix", 1, "kv/b", wire.OK},
		{"same-prefix-again", 1, "kv/b", wire.OK},
		{"third-prefix", 1, "kv/c", wire.ENOSPC},
		{"second-stream", 2, "kv/d", wire.ENOSPC},
		{"stream-zero", 0, "kv/e", wire.EINVAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sub(c.id, c.prefix); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

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
		maxFlood int  // streams the flood may hold at once
		refused  bool // the flood meets a bound that refuses (per IP address)
	}{
		// The table holds 128 streams; the flood's address gets at most
		// MaxStreamsPerIP (64) of them; the agent comes from another.
		{"other-address", func(c *Config) { c.MaxStreams = 128 }, "127.0.0.2", DefaultMaxStreamsPerIP, true},
		// The flood fills the whole table from the agent's own address;
		// its streams expire, not being renewed, and the agent's takes
		// the place of the oldest of them meanwhile.
		{"same-address-expiry", func(c *Config) {
			c.MaxStreams = 32
			c.MaxStreamsPerIP = 128
			c.StreamIdle = 300 * time.Millisecond
		}, "127.0.0.1", 32, false},
		// The flood fills the whole table from other addresses, and its
		// streams would live long: the agent's subscription takes the
		// place of the oldest stream never proven. Before, it was refused
		// until the flood's streams expired, and a flood sent again each
		// StreamIdle kept every new subscriber out for as long as it
		// lasted.
		{"table-full-unproven", func(c *Config) {
			c.MaxStreams = 32
			c.StreamIdle = 30 * time.Second
		}, "127.0.0.2", 32, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var refusedLogs atomic.Int64
			ep := regtest.Endpoint(t, 100, "127.0.0.1:0")
			cfg := testCenterConfig(t.TempDir(), 0, netip.AddrPort{})
			cfg.Logger = slog.New(countHandler{"registry: subscriptions refused", &refusedLogs})
			tc.mod(&cfg)
			c := startCenterOn(t, ep, cfg)
			const ports, perPort = 32, 4
			accepted := registrytest.SubscribeFlood(t, ep.Addr(), "127.0.0.1", nil, ports, perPort)
			if held := c.Stats().Streams; held > tc.maxFlood || accepted == 0 || !tc.refused && accepted != ports*perPort {
				t.Fatalf("flood: %d of %d subscriptions accepted, %d streams held; want at most %d held, every one accepted unless a bound per IP address refuses (%v)",
					accepted, ports*perPort, held, tc.maxFlood, tc.refused)
			}
			// Every refusal is counted; the log is rate-limited (once per
			// StreamIdle), not a line per refusal.
			refused, logs := c.Stats().SubscribeRefused, refusedLogs.Load()
			if refused != uint64(ports*perPort-accepted) || tc.refused && (refused == 0 || logs < 1 || uint64(logs)*8 > refused) {
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

// TestSpoofedSubscribeNoAmplifier: in checksum mode a sender that writes
// a victim's address as its source opens push streams to the victim with
// a few small reg-subscribe requests. The pushes of one write under the
// subscribed prefix, with their retransmissions and retries, must not
// send the victim more than rfc.AmplifyFactor times the bytes sent in its
// name. In a synctest bubble on rfc/simnet: the victim never answers, and
// the whole life of the streams passes in virtual time. In keyed mode the
// subscribes, sealed with the cluster key, stand for captured ones of a
// real subscriber replayed from the victim's address.
func TestSpoofedSubscribeNoAmplifier(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"checksum", nil},
		{"keyed-replay", []byte("cluster-key-A-0123456789abcdef!!")},
	} {
		t.Run(tc.name, func(t *testing.T) { spoofSubscribes(t, tc.key) })
	}
}

func spoofSubscribes(t *testing.T, key []byte) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		keyed := func(c *rfc.Config) { c.Key = key }
		ep := s.Listen(100, keyed)
		startCenterOn(t, ep, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
		victim := s.Net.Attach(s.Addr())
		t.Cleanup(func() { victim.Close() })
		got := make(chan int, 4096)
		go func() {
			b := make([]byte, wire.MaxDatagram)
			for {
				n, _, err := victim.Recv(b)
				if err != nil {
					close(got)
					return
				}
				got <- n
			}
		}()
		codec, err := wire.NewCodec(0, key)
		if err != nil {
			t.Fatal(err)
		}
		dg := make([]byte, wire.DefaultMaxDatagram)
		sent := 0
		for i := 0; i < DefaultMaxStreamsPerNode; i++ {
			var ps wire.Params
			ps.Reset(make([]byte, 64))
			ps.Uint64(uint64(1<<40 | i + 1))
			ps.String("kv/")
			h := wire.Header{Flags: wire.FlagRequest, CallNo: registry.CallSubscribe, CallID: uint64(i+1) << 20,
				Incarnation: 1, Budget: 1_000_000, Stamp: uint32(time.Now().UnixMilli())}
			n, e := codec.EncodeParams(dg, &h, &ps)
			if e != wire.OK {
				t.Fatal(e)
			}
			victim.Send(dg[:n], ep.Addr())
			sent += n
		}
		cl := newClient(t, s.Listen(7, keyed), ep.Addr())
		if _, err := cl.Put(rfctest.Context(t, time.Second), "kv/x", make([]byte, 1000), 0); err != nil {
			t.Fatalf("Put: %v", err)
		}
		time.Sleep(3 * DefaultStreamIdle)
		victim.Close()
		recv, dgs := 0, 0
		for n := range got {
			recv += n
			dgs++
		}
		t.Logf("%d bytes sent in the victim's name drew %d datagrams, %d bytes, to it", sent, dgs, recv)
		if recv > rfc.AmplifyFactor*sent {
			t.Fatalf("%d bytes sent in the victim's name drew %d datagrams, %d bytes, to it: %.1f times",
				sent, dgs, recv, float64(recv)/float64(sent))
		}
	})
}

// TestWatchProvesStream: a client's Watch echoes its stream's cookie as
// soon as it has subscribed, so the center pushes it the changes made
// after its listing: they arrive as pushes, not by a resynchronization.
func TestWatchProvesStream(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		ep := s.Listen(100, nil)
		c := startCenterOn(t, ep, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
		cl := newClient(t, s.Listen(7, nil), ep.Addr())
		pushed := make(chan string, 16)
		w, err := cl.Watch([]string{"kv/"}, func(ch client.Change) {
			if !ch.Resync {
				pushed <- ch.Key
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		for i := 0; !w.Synced(); i++ {
			if i == 500 {
				t.Fatal("watch not synced")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := cl.Put(rfctest.Context(t, time.Second), "y", []byte("v"), 0); err != nil {
			t.Fatalf("Put: %v", err)
		}
		select {
		case k := <-pushed:
			if k != "kv/y" {
				t.Fatalf("pushed %q, want kv/y", k)
			}
		case <-time.After(time.Second):
			t.Fatalf("kv/y not pushed; watch %+v, center pushes %d", w.Stats(), c.Stats().Pushes)
		}
		if st := w.Stats(); st.Pushes == 0 || st.Resyncs != 1 {
			t.Fatalf("watch %+v: want pushes and one resynchronization", st)
		}
	})
}
