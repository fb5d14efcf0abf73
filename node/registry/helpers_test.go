package registry

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// quiet is a logger for tests: state changes are expected and noisy.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEndpoint(t testing.TB, node uint32, addr string) *rfc.Endpoint {
	t.Helper()
	cfg := rfc.DefaultConfig()
	cfg.NodeID = node
	cfg.Logger = quiet
	if addr != "" {
		cfg.Addr = addr
	}
	ep, err := rfc.Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// testCenterConfig is the default configuration with test-sized timers.
func testCenterConfig(dir string, index uint8, peer netip.AddrPort) Config {
	cfg := DefaultConfig(dir)
	cfg.Index = index
	cfg.Peer = peer
	cfg.Logger = quiet
	cfg.AntiEntropyEvery = 500 * time.Millisecond
	cfg.SweepEvery = 10 * time.Millisecond
	return cfg
}

// pair is two centers on loopback, each with its endpoint.
type pair struct {
	eps  [2]*rfc.Endpoint
	cs   [2]*Center
	dirs [2]string
}

func startPair(t testing.TB, mod func(i int, c *Config)) *pair {
	t.Helper()
	p := &pair{}
	for i := range p.eps {
		p.eps[i] = newEndpoint(t, uint32(100+i), "")
		p.dirs[i] = filepath.Join(t.TempDir(), "center")
	}
	for i := range p.cs {
		cfg := testCenterConfig(p.dirs[i], uint8(i), p.eps[1-i].Addr())
		if mod != nil {
			mod(i, &cfg)
		}
		c, err := StartCenter(p.eps[i], cfg)
		if err != nil {
			t.Fatalf("StartCenter: %v", err)
		}
		p.cs[i] = c
		t.Cleanup(func() { c.Close() })
	}
	// Each serves clients once it has caught up with the other.
	if !waitFor(10*time.Second, func() bool { return p.cs[0].serving() && p.cs[1].serving() }) {
		t.Fatal("centers did not complete their first anti-entropy round")
	}
	return p
}

func (p *pair) addrs() []netip.AddrPort { return []netip.AddrPort{p.eps[0].Addr(), p.eps[1].Addr()} }

func newClient(t testing.TB, ep *rfc.Endpoint, centers ...netip.AddrPort) *Client {
	t.Helper()
	cfg := DefaultClientConfig(centers...)
	cfg.AttemptTimeout = 200 * time.Millisecond
	cfg.KeepaliveEvery = 50 * time.Millisecond
	c, err := NewClient(ep, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}

// openMap opens the agent's map at path for reading, closed when the test
// ends.
func openMap(t testing.TB, path string) *sdk.Reader {
	t.Helper()
	r, err := sdk.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func errnoOf(err error) wire.Errno { return wire.AsErrno(err) }
