// Package rfctest provides rfc endpoints for the tests of the packages
// above rfc, as net/http/httptest does for HTTP servers: loopback
// endpoints that log nothing and are closed when the test ends, the
// bounded waits that tests of asynchronous services need, and endpoints
// on a calm simulated network in a synctest bubble (Sim, InSim) for the
// tests whose subject is time.
//
// rfc's own tests cannot import it (rfctest imports rfc); they keep their
// helpers in rfc/helpers_test.go and share the polling and the calm
// network in a bubble with it through rfc/internal/testenv.
// docs/TESTING.md ("Shared test helpers") describes it.
package rfctest

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/internal/testenv"
	"fastcall/wire"
)

// Quiet is a logger that discards every record: tests provoke peer
// deaths, refusals and state changes on purpose.
var Quiet = slog.New(slog.DiscardHandler)

// Config is rfc.DefaultConfig (a loopback address the kernel picks) for
// node, logging to Quiet.
func Config(node uint32) rfc.Config {
	cfg := rfc.DefaultConfig()
	cfg.NodeID = node
	cfg.Logger = Quiet
	return cfg
}

// Listen opens an endpoint on Config(node), changed by mod when mod is not
// nil. The endpoint is closed when the test ends; a failure to open ends
// the test.
func Listen(t testing.TB, node uint32, mod func(*rfc.Config)) *rfc.Endpoint {
	t.Helper()
	return testenv.Open(t, Config(node), mod, rfc.Listen)
}

// Must returns ep, and panics if err is not nil. It is for examples,
// which have no testing.TB to fail and show the call a user writes:
// rfctest.Must(rfc.Listen(rfctest.Config(1))). The caller closes ep.
func Must(ep *rfc.Endpoint, err error) *rfc.Endpoint {
	if err != nil {
		panic(err)
	}
	return ep
}

// Context returns a context that ends after d, or when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// WaitFor polls cond every millisecond until it holds or d passes, and
// reports whether it held.
func WaitFor(d time.Duration, cond func() bool) bool { return testenv.WaitFor(d, cond) }

// UDP opens a bare UDP socket on 127.0.0.1 at a port the kernel picks,
// for a test that plays a peer by hand; it is closed when the test ends,
// and a failure to open ends the test.
func UDP(t testing.TB) *net.UDPConn {
	t.Helper()
	return testenv.UDP(t)
}

// FreeAddrs returns n loopback UDP addresses that were free a moment ago,
// for processes that must be told their address before they start.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var conns []*net.UDPConn
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		out = append(out, c.LocalAddr().String())
	}
	for _, c := range conns {
		c.Close()
	}
	return out
}

// Request is request ps to call number call, sent by node src at
// incarnation inc from address from, as the engine hands it to a
// handler: encoded and decoded again. Tests call a handler with it to see
// the error number a one-way call sends nowhere.
func Request(t testing.TB, from netip.AddrPort, src, inc uint32, call uint16, ps *wire.Params) *rfc.Request {
	t.Helper()
	codec, err := wire.NewCodec(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := wire.Header{Flags: wire.FlagRequest, CallNo: call, Src: src, Incarnation: inc, CallID: 1}
	dg := make([]byte, codec.Limit())
	n, e := codec.EncodeParams(dg, &h, ps)
	if e != wire.OK {
		t.Fatalf("encode call %#x: %v", call, e)
	}
	p := new(wire.Packet)
	if r := codec.Decode(p, dg[:n]); r != wire.ReasonNone {
		t.Fatalf("decode call %#x: %v", call, r)
	}
	return &rfc.Request{Packet: p, From: from}
}
