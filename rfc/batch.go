package rfc

import "net/netip"

// message is one datagram of a batch: its buffer, its length after a read
// (or the length to send), and the peer address.
type message struct {
	buf  []byte
	n    int
	addr netip.AddrPort
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
// used by one goroutine per batchConn. write may be used concurrently by
// goroutines that each own their writeState (from newWriter).
type batchConn interface {
	serve(ms []message, handle func(n int)) error
	write(w *writeState, ms []message) (int, error)
}
