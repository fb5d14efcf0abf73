package campaign

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// peerFlood sends to dst, in checksum mode, one datagram from each of n
// sources (a socket on its own loopback address and port, 127.1.0.1
// upwards, closed at once): reply-shaped if replies, else a request (a
// ping, or an increment naming the node's incarnation inc). It returns
// how many it sent.
func peerFlood(t *testing.T, dst netip.AddrPort, n int, replies bool, inc uint32) int {
	codec, _ := wire.NewCodec(0, nil)
	dg := make([]byte, 1400)
	sent := 0
	for i := 0; i < n; i++ {
		ip := net.IPv4(127, 1+byte(i/(250*250)), byte(i/250%250), byte(i%250+1))
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatalf("source %d (%v): %v", i, ip, err)
		}
		h := wire.Header{Flags: wire.FlagRequest, CallNo: rfc.CallPing, Src: uint32(1000 + i), CallID: uint64(i+1) << 20, Incarnation: 1,
			Budget: 1_000_000, Stamp: uint32(time.Now().UnixMilli())}
		switch {
		case replies:
			h.Flags, h.Budget = wire.FlagReply, 0
		case i%2 == 1:
			h.CallNo, h.PeerInc = builtin.CallIncr, inc
		}
		m, _ := codec.EncodeParams(dg, &h, nil)
		c.WriteToUDPAddrPort(dg[:m], dst)
		c.Close()
		sent++
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // paces the flood within the node's socket buffer; it synchronises nothing
		}
	}
	return sent
}

// settle polls the engine counters of the node at addr until counter
// stops moving (unchanged over 300 ms, at most 10 s) and returns the last
// counters read.
func settle(t *testing.T, cli *rfc.Endpoint, addr netip.AddrPort, counter string) map[string]uint64 {
	t.Helper()
	st := engineStats(t, cli, addr)
	for end, last, at := time.Now().Add(10*time.Second), st[counter], time.Now(); time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		st = engineStats(t, cli, addr)
		if st[counter] != last {
			last, at = st[counter], time.Now()
		} else if time.Since(at) > 300*time.Millisecond {
			break
		}
	}
	return st
}

// TestPeerTableFill: an rfcd without a key (a dispatcher watching one
// heartbeat member) gets reply-shaped and request-shaped datagrams from
// many source addresses and ports. Replies make no peer entry; requests
// make at most one each, up to the table's bound. Afterwards a peer
// that was never heard before comes up, is seen alive, is killed: the node
// declares it dead and its calls to it fail at once with ENODEAD.
func TestPeerTableFill(t *testing.T) {
	vaddr := rfctest.FreeAddrs(t, 1)[0]
	observer := startConfig(t, "observer.json", fmt.Sprintf(`{"addr": "127.0.0.1:0", "node": 31, "insecure": true,
		"log_level": "error", "roles": ["dispatcher"], "heartbeat": {"members": [%q], "interval": "100ms"}}`, vaddr))
	cli := listenClient(t, nil)
	// The member is called, found silent and declared dead before the
	// flood, so that the table holds its entry and this caller's.
	if m, ok := waitMember(t, cli, observer.addr, netip.MustParseAddrPort(vaddr), inState(heartbeat.StateDead)); !ok {
		t.Fatalf("the node never declared its silent member dead: %+v", m)
	}
	before := engineStats(t, cli, observer.addr)

	sources := scale(5000)
	began := time.Now()
	sent := peerFlood(t, observer.addr, sources, true, 0)
	mid := settle(t, cli, observer.addr, "drop-late-reply")
	late := mid["drop-late-reply"] - before["drop-late-reply"]
	if late == 0 || mid["peers"] > before["peers"] {
		t.Fatalf("%d reply-shaped datagrams from as many sources: %d dropped as late, the peer table went from %d to %d entries",
			sources, late, before["peers"], mid["peers"])
	}
	// Past MaxPeers at -campaign.long.
	requests := scale(7000)
	sent += peerFlood(t, observer.addr, requests, false, uint32(before["incarnation"]))
	took := time.Since(began)
	after := settle(t, cli, observer.addr, "peers")
	maxPeers := uint64(rfc.DefaultConfig().MaxPeers)
	if grew := int(after["peers"]) - int(mid["peers"]); grew > requests || after["peers"] > maxPeers {
		t.Fatalf("%d request sources, the peer table grew by %d to %d (bound %d)", requests, grew, after["peers"], maxPeers)
	}

	// A peer the node has called (its heartbeat member) but never heard
	// comes up after the flood, then dies.
	victim := startConfig(t, "victim.json", fmt.Sprintf(`{"addr": %q, "node": 32, "insecure": true,
		"log_level": "error", "heartbeat": {"members": [%q], "interval": "100ms"}}`, vaddr, observer.addr))
	va := victim.addr
	if m, ok := waitMember(t, cli, observer.addr, va, aliveAs(32)); !ok {
		t.Fatalf("the node never saw the new peer alive: %+v", m)
	}
	if e, _ := dispatchPing(t, cli, observer.addr, va, "fill/alive"); e != wire.OK {
		t.Fatalf("dispatched ping to the live peer: %v", e)
	}
	victim.kill()
	if m, ok := waitMember(t, cli, observer.addr, va, inState(heartbeat.StateDead)); !ok {
		t.Fatalf("the node did not declare the killed peer dead: %+v", m)
	}
	calls, enodead := 5, 0
	var slowest time.Duration
	for i := 0; i < calls; i++ {
		e, d := dispatchPing(t, cli, observer.addr, va, fmt.Sprintf("fill/%d", i))
		if e != wire.ENODEAD {
			t.Fatalf("call %d to the dead peer ended %v after %v, want ENODEAD", i, e, d)
		}
		enodead++
		slowest = max(slowest, d)
	}
	final := engineStats(t, cli, observer.addr)
	record(t, row{
		Fault: "peer-table fill",
		Params: fmt.Sprintf("rfcd without a key (dispatcher, one heartbeat member, default MaxPeers %d); a reply-shaped datagram from each of %d source addresses and ports, then a request (ping, or increment naming the node's incarnation) from each of %d sources; "+
			"then a heartbeat member never heard before comes up and is killed", maxPeers, sources, requests),
		Load:    fmt.Sprintf("%d datagrams in %v", sent, took.Round(time.Millisecond)),
		Checked: "reply-shaped datagrams make no peer entry (dropped, late); requests at most one each, within the bound; the new peer is seen alive, declared dead when killed, and the node's calls to it end ENODEAD",
		Result: fmt.Sprintf("pass: %d of %d reply-shaped dropped late (any others lost at the socket buffer), peers %d → %d; after the requests %d, %d refused (peers-full); %d of %d calls to the dead peer ENODEAD (slowest %v)",
			late, sources, before["peers"], mid["peers"], after["peers"], final["drop-peers-full"]-before["drop-peers-full"],
			enodead, calls, slowest.Round(time.Microsecond)),
	})
}
