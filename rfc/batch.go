package rfc

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	// local is, on a socket bound to a wildcard address, the address a
	// datagram read was sent to, and the address a datagram to write
	// goes out from (a reply from the address its request went to, the
	// only one its caller accepts it from); invalid elsewhere: the
	// kernel's choice, the socket's own address.
	local netip.Addr
}

// peerAddr is the form in which the engine names a peer: an IPv4
// address as itself, never as an IPv4-mapped IPv6 address, and an IPv6
// address with a zone (a link-local peer) with the zone as the
// interface's index in decimal ("fe80::1%2", not "fe80::1%eth0"), and
// any other address without a zone ("::1", not "::1%lo"), which
// is how the reader reports the sender of every datagram. Every entry
// point that takes a destination passes it through here, so that a
// reply's sender equals its call's destination and both find the same
// peer entry. A decimal zone is written in its shortest form. A zone
// that is neither a number nor the name of an
// interface of this host is left as it is; a send to it fails. It
// allocates nothing once a zone's name and text are cached (zoneCache).
func peerAddr(ap netip.AddrPort) netip.AddrPort {
	a := ap.Addr()
	if a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), ap.Port())
	}
	if z := a.Zone(); z != "" {
		if !needsZone(a) {
			// The kernel ignores it, and names the replies without it.
			return netip.AddrPortFrom(a.WithZone(""), ap.Port())
		}
		if id := zoneIndex(z); id != 0 {
			if t := zoneText(id); t != z { // "eth0" or "003" is read back as "2" or "3"
				return netip.AddrPortFrom(a.WithZone(t), ap.Port())
			}
		}
	}
	return ap
}

// needsZone reports whether a is an IPv6 address whose zone the kernel
// takes (a scope id): link-local unicast and multicast, interface-local
// multicast. Any other address is sent and reported without one.
func needsZone(a netip.Addr) bool {
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
}

// PeerAddr returns ap in the form the engine names peers (see
// Request.From and PeerInfo.Addr): IPv4-mapped addresses unmapped, a
// link-local zone as its interface's index in decimal, no zone on any
// other address. Compare a configured address with a sender through it.
func PeerAddr(ap netip.AddrPort) netip.AddrPort { return peerAddr(ap) }

// zoneIndex returns the interface index a zone names, in decimal or as an
// interface name, and 0 for none.
func zoneIndex(z string) uint32 {
	if z == "" {
		return 0
	}
	if n, ok := zoneNumber(z); ok {
		return n
	}
	return zones.index(z)
}

// zoneNumber parses a zone written as a decimal interface index. It does
// not allocate (strconv.ParseUint allocates its error for a name).
func zoneNumber(z string) (uint32, bool) {
	if z == "" || len(z) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(z); i++ {
		if z[i] < '0' || z[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(z[i]-'0')
	}
	return uint32(n), n <= 1<<32-1
}

// zoneRefresh bounds how long a cached interface name is trusted (an
// interface removed and made again gets another index), and
// zoneMissRefresh how often a name not in the cache reloads it, so that a
// zone naming no interface does not list the interfaces on every send.
const (
	zoneRefresh     = time.Minute
	zoneMissRefresh = time.Second
	zoneTextSlots   = 64
)

// zoneCache maps interface names to indexes, loaded from the host's
// interface list at most once per zoneMissRefresh and at least once per
// zoneRefresh while names are looked up; the zone text of an index past
// 99 (decimal text that strconv does not keep) is kept in a slot per
// index modulo zoneTextSlots. A lookup that hits allocates nothing.
type zoneCache struct {
	mu struct {
		sync.Mutex
		byName  map[string]uint32 // guarded by mu
		fetched time.Time         // last load of byName
	}
	text [zoneTextSlots]atomic.Pointer[zoneTextEntry]
}

type zoneTextEntry struct {
	id uint32
	s  string
}

var zones zoneCache

// index returns the index of the interface named name, 0 for none.
func (zc *zoneCache) index(name string) uint32 {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	id, ok := zc.mu.byName[name]
	age := time.Since(zc.mu.fetched)
	if zc.mu.byName == nil || age >= zoneRefresh || (!ok && age >= zoneMissRefresh) {
		ifs, err := net.Interfaces()
		if err != nil {
			return id
		}
		byName := make(map[string]uint32, len(ifs))
		for i := range ifs {
			byName[ifs[i].Name] = uint32(ifs[i].Index)
		}
		zc.mu.byName, zc.mu.fetched = byName, time.Now()
		id = byName[name]
	}
	return id
}

// zoneText returns the decimal text of an interface index, as a zone.
func zoneText(id uint32) string {
	if id < 100 {
		return strconv.FormatUint(uint64(id), 10) // strconv's own constant text
	}
	slot := &zones.text[id%zoneTextSlots]
	if e := slot.Load(); e != nil && e.id == id {
		return e.s
	}
	e := &zoneTextEntry{id: id, s: strconv.FormatUint(uint64(id), 10)}
	slot.Store(e)
	return e.s
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
