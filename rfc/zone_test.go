//go:build linux

package rfc

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLinkLocalZone: an IPv6 link-local peer is only reachable with its
// zone (scope id). The reader keeps the scope id of every sender as the
// zone, so a reply's sender (fe80::1%2) equals its call's destination,
// and a destination's zone is sent as the scope id (without it the kernel
// refuses the send).
func TestLinkLocalZone(t *testing.T) {
	sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: 0x3930, Scope_id: 2,
		Addr: netip.MustParseAddr("fe80::1").As16()}
	if got := sockaddrToAddrPort(&sa); got.Addr().Zone() == "" {
		t.Errorf("sender %v: scope id 2 lost", got)
	}
	var out unix.RawSockaddrInet6
	addrPortToSockaddr(netip.MustParseAddrPort("[fe80::1%2]:12345"), &out, true)
	if out.Scope_id != 2 {
		t.Errorf("destination fe80::1%%2 sent with scope id %d", out.Scope_id)
	}
}

// TestZoneByName: a destination whose zone names an interface is named by
// the interface's index, the form the reader reports, so that the reply
// from fe80::1 on lo matches a call to fe80::1%lo.
func TestZoneByName(t *testing.T) {
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no interface lo")
	}
	got := peerAddr(netip.MustParseAddrPort("[fe80::1%lo]:7000"))
	want := netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(strconv.Itoa(ifi.Index)), 7000)
	if got != want {
		t.Fatalf("peerAddr = %v, want %v", got, want)
	}
	if got := peerAddr(netip.MustParseAddrPort("[fe80::1%3]:7000")); got.Addr().Zone() != "3" {
		t.Fatalf("numeric zone changed: %v", got)
	}
	// The reader writes an index in its shortest decimal form.
	if got := peerAddr(netip.MustParseAddrPort("[fe80::1%003]:7000")); got.Addr().Zone() != "3" {
		t.Fatalf("zone 003 not named as the reader names scope id 3: %v", got)
	}
	if got := peerAddr(netip.MustParseAddrPort("[::ffff:10.0.0.1]:7000")); got != netip.MustParseAddrPort("10.0.0.1:7000") {
		t.Fatalf("mapped address not unmapped: %v", got)
	}
}

// TestZoneNoAlloc: naming a link-local sender or destination allocates
// nothing in steady state: the reader's scope id past 99 (decimal text
// that strconv does not keep), and a destination or a sender (the
// portable reader, a Transport) whose zone is an interface's name, which
// was looked up in the host's whole interface list on every datagram.
func TestZoneNoAlloc(t *testing.T) {
	for _, id := range []uint32{0, 2, 150, 70000} {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: 0x3930, Scope_id: id,
			Addr: netip.MustParseAddr("fe80::1").As16()}
		got := sockaddrToAddrPort(&sa)
		if want := strconv.FormatUint(uint64(id), 10); id != 0 && got.Addr().Zone() != want {
			t.Errorf("scope id %d read as zone %q", id, got.Addr().Zone())
		}
		if n := testing.AllocsPerRun(100, func() { sockaddrToAddrPort(&sa) }); n != 0 {
			t.Errorf("sender with scope id %d: %v allocations per datagram", id, n)
		}
	}
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no interface lo")
	}
	named := netip.MustParseAddrPort("[fe80::1%lo]:7000")
	want := netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(strconv.Itoa(ifi.Index)), 7000)
	if got := peerAddr(named); got != want {
		t.Fatalf("peerAddr(%v) = %v, want %v", named, got, want)
	}
	if n := testing.AllocsPerRun(100, func() { peerAddr(named) }); n != 0 {
		t.Errorf("named zone: %v allocations per address", n)
	}
	var out unix.RawSockaddrInet6
	if addrPortToSockaddr(named, &out, true); out.Scope_id != uint32(ifi.Index) {
		t.Errorf("destination %v sent with scope id %d", named, out.Scope_id)
	}
	if n := testing.AllocsPerRun(100, func() { addrPortToSockaddr(named, &out, true) }); n != 0 {
		t.Errorf("named zone sockaddr: %v allocations per send", n)
	}
}

// TestZoneOnGlobalAddress: the kernel takes a zone only for addresses
// that need one (link-local) and reports every other sender without one,
// so a destination such as [::1%lo] is named without its zone: otherwise
// its replies, from [::1], never match the call and it times out.
func TestZoneOnGlobalAddress(t *testing.T) {
	srv := newTestServer(t, func(c *Config) { c.Addr = "[::1]:0" })
	cli := newTestEndpoint(t, func(c *Config) { c.Addr = "[::1]:0" })
	for _, zone := range []string{"lo", "1", "0"} {
		dst := netip.AddrPortFrom(srv.Addr().Addr().WithZone(zone), srv.Addr().Port())
		if got := peerAddr(dst); got != srv.Addr() {
			t.Errorf("peerAddr(%v) = %v, want %v", dst, got, srv.Addr())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cli.Call(ctx, dst, CallPing, nil, nil)
		cancel()
		if err != nil {
			t.Errorf("call to %v: %v", dst, err)
		}
	}
}
