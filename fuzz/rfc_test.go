package fuzz

import (
	"net"
	"runtime"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// datagramTarget is an endpoint and a socket that sends it datagrams from
// a loopback address of the same family.
type datagramTarget struct {
	ep  *rfc.Endpoint
	src *net.UDPConn
}

// newDatagramTarget opens an endpoint on addr (a loopback address, any
// port), keyed with key unless nil, and a socket connected to it; nil
// when the family is unavailable.
func newDatagramTarget(f *testing.F, addr string, key []byte) *datagramTarget {
	cfg := rfc.DefaultConfig()
	cfg.Addr = addr
	cfg.Key = key
	cfg.DupEntries = 16 // Stats, read twice per input, walks the cache
	ep, err := rfc.Listen(cfg)
	if err != nil {
		return nil
	}
	f.Cleanup(func() { ep.Close() })
	src, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ep.Addr()))
	if err != nil {
		f.Fatalf("socket to %v: %v", ep.Addr(), err)
	}
	f.Cleanup(func() { src.Close() })
	return &datagramTarget{ep: ep, src: src}
}

// FuzzEndpointDatagram: any datagram of 0 to 65507 bytes, from an IPv4 or
// an IPv6 loopback address, goes through a real endpoint's socket and
// reader: the process survives, the endpoint counts the datagram as read,
// and one longer than its MaxDatagram as too-big. The datagram is the
// input's bytes followed by pad filler bytes, so that the fuzzer reaches
// large sizes cheaply.
func FuzzEndpointDatagram(f *testing.F) { fuzzDatagrams(f, nil) }

// FuzzKeyedEndpointDatagram is FuzzEndpointDatagram against endpoints in
// authenticated mode, whose decoder copies each datagram to check its tag.
// They hold the spec vectors' key, so the keyed vectors among the seeds
// pass the tag and their mutations reach the checks after it.
func FuzzKeyedEndpointDatagram(f *testing.F) { fuzzDatagrams(f, fuzzKey) }

// fuzzDatagrams runs the datagram fuzzer against endpoints keyed with key
// (nil: checksum mode).
func fuzzDatagrams(f *testing.F, key []byte) {
	v4 := newDatagramTarget(f, "127.0.0.1:0", key)
	if v4 == nil {
		f.Fatal("no IPv4 loopback endpoint")
	}
	v6 := newDatagramTarget(f, "[::1]:0", key)
	limit := v4.ep.Config().MaxDatagram
	for _, v := range specVectors(f) {
		f.Add(v, uint16(0), false)
		f.Add(v, uint16(0), true)
		f.Add(v, uint16(limit+1-len(v)), false)
	}
	for _, n := range []int{0, 1, wire.HeaderSize, limit, limit + 1, 2000, 9000, wire.MaxDatagram} {
		f.Add([]byte{}, uint16(n), false)
		f.Add([]byte{}, uint16(n), true)
	}
	dg := make([]byte, wire.MaxDatagram)
	f.Fuzz(func(t *testing.T, b []byte, pad uint16, ipv6 bool) {
		tg := v4
		if ipv6 && v6 != nil {
			tg = v6
		}
		n := copy(dg, b)
		size := min(n+int(pad), len(dg))
		for i := n; i < size; i++ {
			dg[i] = 'x'
		}
		st0 := tg.ep.Stats()
		if _, err := tg.src.Write(dg[:size]); err != nil {
			t.Fatalf("send %d bytes: %v", size, err)
		}
		// The reader counts a datagram as read before it decodes it:
		// wait for both counts.
		oversized := size > limit
		counted := func(st rfc.Stats) bool {
			return st.Rx > st0.Rx && (!oversized || st.Drops["too-big"] > st0.Drops["too-big"])
		}
		deadline := time.Now().Add(10 * time.Second)
		st := tg.ep.Stats()
		for !counted(st) {
			if time.Now().After(deadline) {
				t.Fatalf("%d-byte datagram to %v: read %d, too-big %d (drops %v)",
					size, tg.ep.Addr(), st.Rx-st0.Rx, st.Drops["too-big"]-st0.Drops["too-big"], st.Drops)
			}
			runtime.Gosched()
			st = tg.ep.Stats()
		}
		if st.Rx != st0.Rx+1 {
			t.Fatalf("one datagram sent, %d read", st.Rx-st0.Rx)
		}
		if oversized && st.Drops["too-big"] != st0.Drops["too-big"]+1 {
			t.Fatalf("one %d-byte datagram past the %d-byte limit, %d counted too-big",
				size, limit, st.Drops["too-big"]-st0.Drops["too-big"])
		}
		if !oversized && st.Drops["too-big"] != st0.Drops["too-big"] {
			t.Fatalf("%d-byte datagram within the %d-byte limit counted too-big", size, limit)
		}
	})
}
