package rfc

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// tapTransport is an in-memory Transport whose sends the test reads
// (sent) and into which it delivers datagrams from any source (deliver),
// as an attacker on the path can with a spoofed source address.
type tapTransport struct {
	local netip.AddrPort
	in    chan tapDatagram
	sent  chan tapDatagram
	once  sync.Once
	done  chan struct{}
}

type tapDatagram struct {
	b    []byte
	addr netip.AddrPort // source on in, destination on sent
}

func newTap(local netip.AddrPort) *tapTransport {
	return &tapTransport{local: local, in: make(chan tapDatagram, 16), sent: make(chan tapDatagram, 16), done: make(chan struct{})}
}

func (t *tapTransport) Recv(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-t.in:
		return copy(b, d.b), d.addr, nil
	case <-t.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (t *tapTransport) Send(b []byte, dst netip.AddrPort) error {
	select {
	case <-t.done:
		return net.ErrClosed
	case t.sent <- tapDatagram{append([]byte(nil), b...), dst}:
	default: // a full tap drops, as a network may
	}
	return nil
}

func (t *tapTransport) deliver(b []byte, from netip.AddrPort) {
	t.in <- tapDatagram{append([]byte(nil), b...), from}
}

func (t *tapTransport) LocalAddr() netip.AddrPort { return t.local }
func (t *tapTransport) Close() error              { t.once.Do(func() { close(t.done) }); return nil }

// TestReflectedRequestDropped: a keyed request to a peer whose node id
// the sender has not learnt carries destination node id 0, so any
// endpoint of the cluster accepts it. Captured and sent back to its
// sender from the sender's own address, it ran there: an idempotent call
// meant for the peer ran on the sender. Such a request (destination 0,
// from this endpoint's address or carrying its node id, and not a call of
// its own in flight to that address) is now dropped and counted; a call
// of an endpoint to itself still runs.
func TestReflectedRequestDropped(t *testing.T) {
	const callCount = wire.CallUserBase + 60
	self := netip.MustParseAddrPort("127.0.0.1:7001")
	peer := netip.MustParseAddrPort("127.0.0.1:7002")
	tap := newTap(self)
	cfg := DefaultConfig()
	cfg.Key, cfg.NodeID = keyA, 1
	ep, err := ListenTransport(cfg, tap)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	var runs atomic.Int64
	if err := ep.Register(callCount, "count", nil, Idempotent, func(*Request, *wire.Params) wire.Errno {
		runs.Add(1)
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	// The call to the peer: its request is captured, never answered.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	go ep.Call(ctx, peer, callCount, nil, nil)
	var req tapDatagram
	select {
	case req = <-tap.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("no request sent")
	}
	codec, err := wire.NewCodec(cfg.MaxDatagram, keyA)
	if err != nil {
		t.Fatal(err)
	}
	var pkt wire.Packet
	if r := codec.Decode(&pkt, req.b); r != wire.ReasonNone || pkt.Dst != 0 || req.addr != peer {
		t.Fatalf("captured request: reason %v dst %d to %v", r, pkt.Dst, req.addr)
	}
	// Reflected: from the sender's own address, and from another one.
	tap.deliver(req.b, self)
	tap.deliver(req.b, netip.MustParseAddrPort("127.0.0.1:7003"))
	// A call of the endpoint to itself is looped back and runs.
	go func() {
		for d := range tap.sent {
			if d.addr == self {
				tap.deliver(d.b, self)
			}
		}
	}()
	if err := ep.Call(context.Background(), self, callCount, nil, nil); err != nil {
		t.Fatalf("call to itself: %v", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the call ran %d times on its sender, want 1 (the call to itself)", n)
	}
	if n := dropCount(ep, "reflected"); n != 2 {
		t.Fatalf("reflected drops %d, want 2", n)
	}
}

// dropCount returns the drop counter name of ep (-1: none).
func dropCount(ep *Endpoint, name string) int64 {
	for _, d := range ep.Drops() {
		if d.Reason == name {
			return int64(d.Count)
		}
	}
	return -1
}
