//go:build linux

package rfc

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

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
	if got := peerAddr(netip.MustParseAddrPort("[::ffff:10.0.0.1]:7000")); got != netip.MustParseAddrPort("10.0.0.1:7000") {
		t.Fatalf("mapped address not unmapped: %v", got)
	}
}
