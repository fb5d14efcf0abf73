package center

import (
	"context"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestTouchOnlyFromPeer: registry.CallTouch is the other center forwarding a
// lease renewal. Any other sender (any node with the key, or anyone in
// checksum mode) that sends it with a dead node's address as owner would
// keep that node's instances registered for as long as it liked. A call
// between centers (touch, replicate, log sync) that does not come from the
// configured peer center is refused EPERM and counted.
func TestTouchOnlyFromPeer(t *testing.T) {
	p := startPair(t, nil)
	owner := regtest.Endpoint(t, 7, "")
	c := newClient(t, owner, p.Addrs()...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Register(ctx, "db", "10.0.0.1:5432", nil, time.Second); err != nil {
		t.Fatal(err)
	}
	stranger := regtest.Endpoint(t, 8, "")
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.Uint64(1) // claims to be center 1
	ps.String(owner.Addr().String())
	err := stranger.Call(ctx, p.EPs[0].Addr(), registry.CallTouch, &ps, nil)
	if e := wire.AsErrno(err); e != wire.EPERM {
		t.Fatalf("touch from a node that is not the peer center: %v, want EPERM", err)
	}

	// The other calls between centers are refused the same way.
	ps.Reset(make([]byte, 256))
	ps.Uint64(1)
	ps.Uint64(0)
	ps.String("db/x")
	ps.Bytes([]byte{1, 2, 3})
	err = stranger.Call(ctx, p.EPs[0].Addr(), registry.CallReplicate, &ps, nil)
	if e := wire.AsErrno(err); e != wire.EPERM {
		t.Fatalf("replicate from a node that is not the peer center: %v, want EPERM", err)
	}
	ps.Reset(make([]byte, 256))
	for i := 0; i < 4; i++ {
		ps.Uint64(1)
	}
	err = stranger.Call(ctx, p.EPs[0].Addr(), registry.CallLogSync, &ps, nil)
	if e := wire.AsErrno(err); e != wire.EPERM {
		t.Fatalf("log sync from a node that is not the peer center: %v, want EPERM", err)
	}
	if n := p.Cs[0].Stats().NotPeer; n != 3 {
		t.Fatalf("NotPeer = %d, want 3", n)
	}
}

// TestTouchSenderIndex: from the peer center's address, a touch whose
// sender index is not the other center's (the receiver's own, or past the
// two indexes) is refused EINVAL and counted as malformed; the other
// center's index is answered.
func TestTouchSenderIndex(t *testing.T) {
	p := startPair(t, nil)
	ctx := rfctest.Context(t, 5*time.Second)
	for _, tc := range []struct {
		sender uint64
		want   wire.Errno
	}{{0, wire.EINVAL}, {2, wire.EINVAL}, {1, wire.OK}} {
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.Uint64(tc.sender)
		ps.String("127.0.0.1:9")
		before := p.Cs[0].Stats().Malformed
		err := p.EPs[1].Call(ctx, p.EPs[0].Addr(), registry.CallTouch, &ps, nil)
		if e := wire.AsErrno(err); e != tc.want {
			t.Fatalf("touch from the peer naming sender %d: %v, want %v", tc.sender, err, tc.want)
		}
		if n := p.Cs[0].Stats().Malformed - before; (n == 1) != (tc.want == wire.EINVAL) {
			t.Fatalf("sender %d: malformed counted %d times", tc.sender, n)
		}
	}
}
