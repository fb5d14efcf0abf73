package rfc

import "net/netip"

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
// address as itself, never as an IPv4-mapped IPv6 address, which is how
// the reader reports the sender of every datagram. Every entry point that
// takes a destination passes it through here, so that a reply's sender
// equals its call's destination and both find the same peer entry.
func peerAddr(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
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
