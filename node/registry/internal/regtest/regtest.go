// Package regtest holds what the tests of the registry's packages share
// beyond rfc/rfctest (quiet logger, contexts, polling): endpoints on a
// given loopback address, a pair of centers, raw calls, free addresses
// and the agent's map opened for reading. It imports none of the
// registry's role packages, so that the tests inside each of them can use
// it; a pair of centers is started through the function the test passes.
package regtest

import (
	"io"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// Endpoint listens on addr (any loopback port if empty) as node; it is
// closed when the test ends.
func Endpoint(t testing.TB, node uint32, addr string) *rfc.Endpoint {
	t.Helper()
	if addr == "" {
		return rfctest.Listen(t, node, nil)
	}
	return rfctest.Listen(t, node, func(c *rfc.Config) { c.Addr = addr })
}

// OpenMap opens the agent's map at path for reading, closed when the test
// ends.
func OpenMap(t testing.TB, path string) *sdk.Reader {
	t.Helper()
	r, err := sdk.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Call makes one call no from ep to dst with the parameters build appends,
// and returns its error number; the reply is discarded.
func Call(t testing.TB, ep *rfc.Endpoint, dst netip.AddrPort, no uint16, build func(ps *wire.Params)) wire.Errno {
	var ps wire.Params
	ps.Reset(make([]byte, ep.Config().MaxDatagram-wire.HeaderSize))
	build(&ps)
	if e := ps.Err(); e != wire.OK {
		return e
	}
	return wire.AsErrno(ep.Call(rfctest.Context(t, 2*time.Second), dst, no, &ps, nil))
}

// StuckList answers reg-list on ep as a faulty or hostile center whose
// listing never moves on: every page says more follow and names as its
// next key the key it listed after ("kv/stuck" from the start), until it
// has answered pages of them; from then on each page is the last, so that
// a reader that follows such a listing unchecked ends instead of hanging.
// It returns the count of pages answered.
func StuckList(t testing.TB, ep *rfc.Endpoint, pages int64) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	err := ep.RegisterCalls([]rfc.CallSpec{{No: registry.CallList, Name: "reg-list", Schema: registry.SchemaList,
		Flags: rfc.Idempotent, H: func(req *rfc.Request, rep *wire.Params) wire.Errno {
			next := req.Param(1).Str()
			if next == "" {
				next = "kv/stuck"
			}
			if n.Add(1) > pages {
				rep.Uint64(0)
				rep.String("")
				return wire.OK
			}
			rep.Uint64(1)
			rep.String(next)
			return wire.OK
		}}})
	if err != nil {
		t.Fatal(err)
	}
	return &n
}

// Pair is two centers on loopback, each with its endpoint and data
// directory.
type Pair[C io.Closer] struct {
	EPs  [2]*rfc.Endpoint
	Cs   [2]C
	Dirs [2]string
}

// Addrs returns the two centers' addresses.
func (p *Pair[C]) Addrs() []netip.AddrPort { return []netip.AddrPort{p.EPs[0].Addr(), p.EPs[1].Addr()} }

// StartFunc starts center i on ep with its data in dir and peer as the
// other center.
type StartFunc[C io.Closer] func(i int, ep *rfc.Endpoint, dir string, peer netip.AddrPort) (C, error)

// StartPair starts two centers (nodes 100 and 101) that are each other's
// peer, closed when the test ends, and waits until both serve clients: a
// read of an absent key answers ENOENT (not EBUSY) once a center has caught up with the other.
func StartPair[C io.Closer](t testing.TB, start StartFunc[C]) *Pair[C] {
	t.Helper()
	return StartPairOn(t, func(node uint32) *rfc.Endpoint { return Endpoint(t, node, "") }, start)
}

// StartPairOn is StartPair with the endpoints (the centers' and the
// probe's) that listen opens: rfctest.Sim.Listen for a pair on the
// simulated network, in a synctest bubble.
func StartPairOn[C io.Closer](t testing.TB, listen func(node uint32) *rfc.Endpoint, start StartFunc[C]) *Pair[C] {
	t.Helper()
	p := &Pair[C]{}
	for i := range p.EPs {
		p.EPs[i] = listen(uint32(100 + i))
		p.Dirs[i] = filepath.Join(t.TempDir(), "center")
	}
	for i := range p.Cs {
		c, err := start(i, p.EPs[i], p.Dirs[i], p.EPs[1-i].Addr())
		if err != nil {
			t.Fatalf("start center %d: %v", i, err)
		}
		p.Cs[i] = c
		t.Cleanup(func() { c.Close() })
	}
	probe := listen(99)
	serves := func(i int) bool {
		return Call(t, probe, p.EPs[i].Addr(), registry.CallGet, func(ps *wire.Params) {
			ps.String("kv/regtest-ready")
			ps.Bytes(nil)
		}) == wire.ENOENT
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { return serves(0) && serves(1) }) {
		t.Fatal("centers did not complete their first anti-entropy rounds")
	}
	return p
}
