package rfc

import (
	"net"
	"net/netip"
	"strconv"
)

// message is one datagram of a batch: its buffer, its length after a read
// (or the length to send), and the peer address. After a read n never
// exceeds len(buf): a datagram longer than the buffer reads as the whole
// buffer, which the reader sizes one byte past its limit, so that such a
// datagram is dropped as too big.
type message struct {
	buf  []byte
	n    int
	addr netip.AddrPort
}

// peerAddr is the form in which the engine names a peer: an IPv4
// address as itself, never as an IPv4-mapped IPv6 address, and an IPv6
// address with a zone (a link-local peer) with the zone as the
// interface's index in decimal ("fe80::1%2", not "fe80::1%eth0"), which
// is how the reader reports the sender of every datagram. Every entry
// point that takes a destination passes it through here, so that a
// reply's sender equals its call's destination and both find the same
// peer entry. A zone that is neither a number nor the name of an
// interface of this host is left as it is; a send to it fails.
func peerAddr(ap netip.AddrPort) netip.AddrPort {
	a := ap.Addr()
	if a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), ap.Port())
	}
	if z := a.Zone(); z != "" {
		if _, err := strconv.ParseUint(z, 10, 32); err == nil {
			return ap
		}
		if id := zoneIndex(z); id != 0 {
			return netip.AddrPortFrom(a.WithZone(strconv.FormatUint(uint64(id), 10)), ap.Port())
		}
	}
	return ap
}

// zoneIndex returns the interface index a zone names, in decimal or as an
// interface name, and 0 for none.
func zoneIndex(z string) uint32 {
	if z == "" {
		return 0
	}
	if n, err := strconv.ParseUint(z, 10, 32); err == nil {
		return uint32(n)
	}
	ifi, err := net.InterfaceByName(z)
	if err != nil {
		return 0
	}
	return uint32(ifi.Index)
}

// batchConn reads and writes several datagrams per system call where the
// platform has recvmmsg/sendmmsg, and one per call elsewhere, behind the
// same two signatures. It exists instead of golang.org/x/net/ipv4's
// ReadBatch because that one allocates a net.Addr for every datagram read
// (BenchmarkReadBatchXNet shows it), and the call engine allocates nothing
// per call in steady state.
//
// serve reads batches into ms and runs handle on each (n datagrams, in
// ms[:n]) until the socket fails or closes, and returns that error; it is
// used by one goroutine per batchConn. write sends ms in order, each
// message at most once, and returns how many went out; a message the
// kernel refuses twice is skipped (err is the last refusal), and a closed
// socket ends the batch. write may be used concurrently by goroutines
// that each own their writeState (from newWriter).
type batchConn interface {
	serve(ms []message, handle func(n int)) error
	write(w *writeState, ms []message) (int, error)
}
