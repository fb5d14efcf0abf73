package campaign

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

func udpTo(t *testing.T, addr string) *net.UDPConn {
	ua, _ := net.ResolveUDPAddr("udp4", addr)
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readQuiet reads datagrams from c, handing each to got, until none comes
// for d.
func readQuiet(c *net.UDPConn, d time.Duration, got func(dg []byte)) {
	buf := make([]byte, 70000)
	for {
		c.SetReadDeadline(time.Now().Add(d))
		m, err := c.Read(buf)
		if err != nil {
			return
		}
		got(buf[:m])
	}
}

// drain counts the datagrams and bytes that come back within d.
func drain(c *net.UDPConn, d time.Duration) (n, bytes int) {
	readQuiet(c, d, func(dg []byte) { n, bytes = n+1, bytes+len(dg) })
	return n, bytes
}

// replySizes reads datagrams from c until none comes for d, and returns
// the sizes of those that decode with codec into pk as replies to call id,
// and the incarnation they carry; pk is left holding the last one.
func replySizes(c *net.UDPConn, codec *wire.Codec, pk *wire.Packet, id uint64, d time.Duration) (sizes []int, inc uint32) {
	readQuiet(c, d, func(dg []byte) {
		if codec.Decode(pk, dg) == wire.ReasonNone && pk.CallID == id {
			sizes = append(sizes, len(dg))
			inc = pk.Incarnation
		}
	})
	return sizes, inc
}

// replyWait bounds the wait for a reply that must come: a loaded host
// answers late, and only a node that never answers should trip it.
const replyWait = 10 * time.Second

// awaitReplies reads the replies to call id from c: it waits up to
// replyWait for the first (datagrams of other calls are passed over),
// then for more until none comes for quiet. It returns their error
// numbers and the incarnation the last carries; pk is left holding it.
func awaitReplies(c *net.UDPConn, codec *wire.Codec, pk *wire.Packet, id uint64, quiet time.Duration) (errs []wire.Errno, inc uint32) {
	read := func(dg []byte) {
		if codec.Decode(pk, dg) == wire.ReasonNone && pk.CallID == id {
			errs = append(errs, pk.Errno)
			inc = pk.Incarnation
		}
	}
	for end := time.Now().Add(replyWait); len(errs) == 0 && time.Now().Before(end); {
		readQuiet(c, quiet, read)
	}
	readQuiet(c, quiet, read)
	return errs, inc
}

// pingIncarnation pings the node c is connected to, as a raw datagram
// sealed by codec, and returns the incarnation its reply carries.
func pingIncarnation(t *testing.T, c *net.UDPConn, codec *wire.Codec) uint32 {
	t.Helper()
	dg := make([]byte, 1400)
	h := wire.Header{Flags: wire.FlagRequest, CallNo: rfc.CallPing, CallID: 1 << 40, Stamp: uint32(time.Now().UnixMilli())}
	m, _ := codec.EncodeParams(dg, &h, nil)
	c.Write(dg[:m])
	var pk wire.Packet
	_, inc := awaitReplies(c, codec, &pk, h.CallID, 100*time.Millisecond)
	if inc == 0 {
		t.Fatal("no reply to ping")
	}
	return inc
}

// TestStrangerFlood: junk and unauthenticated datagrams against a keyed
// rfcd get no reply at all, are counted by reason, and do not disturb
// authenticated callers.
func TestStrangerFlood(t *testing.T) {
	n := startNode(t, "-addr", "127.0.0.1:0", "-key", keyFile(t), "-log-level", "error")
	c := udpTo(t, n.addr.String())
	plain, _ := wire.NewCodec(0, nil)
	wrong, _ := wire.NewCodec(0, []byte("not-the-cluster-key-000000000000"))
	sent := 0
	junk := make([]byte, 200)
	dg := make([]byte, 1400)
	for i := 0; i < scale(3000); i++ {
		switch i % 3 {
		case 0:
			rand.Read(junk[:1+i%199])
			c.Write(junk[:1+i%199])
		case 1, 2:
			codec := plain
			if i%3 == 2 {
				codec = wrong
			}
			h := wire.Header{Flags: wire.FlagRequest, CallNo: builtin.CallIncr, CallID: uint64(i+1) << 20, Stamp: uint32(time.Now().UnixMilli())}
			m, _ := codec.Encode(dg, &h, nil, 0)
			c.Write(dg[:m])
		}
		sent++
	}
	replies, _ := drain(c, 300*time.Millisecond)
	cli := listenClient(t, testKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var rep rfc.Reply
	if err := cli.Call(ctx, n.addr, builtin.CallCounter, nil, &rep); err != nil {
		t.Fatalf("authenticated call after the flood: %v", err)
	}
	if replies != 0 || rep.Param(0).Uint64() != 0 {
		t.Fatalf("%d replies to strangers, counter %d", replies, rep.Param(0).Uint64())
	}

	// Datagrams longer than the node's limit, up to the largest UDP
	// payload, one at a time so that the socket buffer keeps each: every
	// one is counted as too-big.
	before := engineStats(t, cli, n.addr)
	big := make([]byte, wire.MaxDatagram)
	rand.Read(big)
	sizes := []int{wire.DefaultMaxDatagram + 1, 2000, 9000, 32768, wire.MaxDatagram}
	oversized := scale(25)
	for i := 0; i < oversized; i++ {
		c.Write(big[:sizes[i%len(sizes)]])
		want := before["drop-too-big"] + uint64(i+1)
		if !waitEngine(t, cli, n.addr, func(st map[string]uint64) bool { return st["drop-too-big"] >= want }) {
			t.Fatalf("oversized datagram %d (%d bytes) not counted as too-big", i, sizes[i%len(sizes)])
		}
	}
	// Junk sent to the node's address written as an IPv4-mapped IPv6
	// address, and authenticated calls to that address.
	ua, err := net.ResolveUDPAddr("udp", n.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	mapped := ua.AddrPort()
	if !mapped.Addr().Is4In6() {
		mapped = netip.AddrPortFrom(netip.AddrFrom16(n.addr.Addr().As16()), n.addr.Port())
	}
	u := rfctest.UDP(t)
	dropped := func(st map[string]uint64) (d uint64) {
		for k, v := range st {
			if strings.HasPrefix(k, "drop-") && k != "drop-too-big" {
				d += v
			}
		}
		return d
	}
	// In bursts of 50, each counted before the next is sent: an unpaced
	// burst can overflow the node's socket buffer, and the kernel drops
	// what the node never reads.
	mappedJunk := scale(100)
	var after map[string]uint64
	for i := 0; i < mappedJunk; i++ {
		rand.Read(junk[:1+i%199])
		u.WriteToUDPAddrPort(junk[:1+i%199], mapped)
		if (i+1)%50 != 0 && i+1 != mappedJunk {
			continue
		}
		if !waitEngine(t, cli, n.addr, func(st map[string]uint64) bool {
			after = st
			return dropped(st)-dropped(before) >= uint64(i+1)
		}) {
			t.Fatalf("%d junk datagrams to %v, %d counted as dropped", i+1, mapped, dropped(after)-dropped(before))
		}
	}
	mappedCalls := scale(50)
	for i := 0; i < mappedCalls; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cli.Call(ctx, mapped, builtin.CallCounter, nil, &rep)
		cancel()
		if err != nil {
			t.Fatalf("authenticated call %d to %v: %v", i, mapped, err)
		}
	}
	if !waitEngine(t, cli, n.addr, func(st map[string]uint64) bool {
		after = st
		return dropped(st)-dropped(before) >= uint64(mappedJunk)
	}) {
		t.Fatalf("%d junk datagrams to %v, %d counted as dropped", mappedJunk, mapped, dropped(after)-dropped(before))
	}
	if got := after["drop-too-big"] - before["drop-too-big"]; got != uint64(oversized) {
		t.Fatalf("%d oversized datagrams, %d counted as too-big", oversized, got)
	}
	if rx := after["rx"] - before["rx"]; rx < uint64(oversized+mappedJunk+mappedCalls) {
		t.Fatalf("node read %d datagrams, sent it at least %d", rx, oversized+mappedJunk+mappedCalls)
	}
	if replies, _ := drain(u, 100*time.Millisecond); replies != 0 {
		t.Fatalf("%d replies to junk sent to the mapped address", replies)
	}
	record(t, row{
		Fault: "unauthenticated flood",
		Params: "random junk, well-formed checksummed requests, requests tagged with a wrong key, against a keyed rfcd; " +
			"then datagrams of 1401 to 65507 bytes (past the 1400-byte limit), junk sent to the node's IPv4-mapped IPv6 address, and authenticated calls to that address",
		Load:    fmt.Sprintf("%d datagrams, %d oversized, %d mapped junk, %d mapped calls", sent, oversized, mappedJunk, mappedCalls),
		Checked: "no reply of any kind to strangers; no increment ran; every oversized datagram counted as too-big; the node stays up and serves authenticated callers, at its plain and its mapped address",
		Result:  fmt.Sprintf("pass: 0 replies, counter 0, %d too-big, %d mapped calls answered", after["drop-too-big"]-before["drop-too-big"], mappedCalls),
	})
}

// engineStats reads the engine counters of the node at addr.
func engineStats(t *testing.T, cli *rfc.Endpoint, addr netip.AddrPort) map[string]uint64 {
	t.Helper()
	var p wire.Params
	p.Reset(make([]byte, 512))
	p.Bytes(make([]byte, 420)) // asks with enough bytes for the reply to stay within the amplification bound
	var rep rfc.Reply
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := cli.Call(ctx, addr, rfc.CallEngineStats, &p, &rep); err != nil {
		t.Fatalf("engine stats of %v: %v", addr, err)
	}
	st := map[string]uint64{}
	for i := 0; i+1 < rep.NParams(); i += 2 {
		st[string(rep.Param(i).Bytes())] = rep.Param(i + 1).Uint64()
	}
	return st
}

// waitEngine polls the engine counters of the node at addr until cond
// holds, for at most 10 seconds, and reports whether it held.
func waitEngine(t *testing.T, cli *rfc.Endpoint, addr netip.AddrPort, cond func(map[string]uint64) bool) bool {
	t.Helper()
	return rfctest.WaitFor(10*time.Second, func() bool { return cond(engineStats(t, cli, addr)) })
}
