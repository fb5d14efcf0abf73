//go:build linux

package rfc

import (
	"fastcall/rfc/internal/testenv"
	"net"
	"testing"

	"golang.org/x/net/ipv4"
)

// batchPair returns a receiving socket and a sender that keeps it fed.
func batchPair(b *testing.B) (*net.UDPConn, func()) {
	rx := testenv.UDP(b)
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 120)
	feed := func() {
		for i := 0; i < 8; i++ {
			tx.Write(msg)
		}
	}
	b.Cleanup(func() { tx.Close() })
	return rx, feed
}

// BenchmarkReadBatchXNet reads batches with golang.org/x/net/ipv4's
// ReadBatch: it allocates a net.Addr for every datagram, which is why the
// engine has its own recvmmsg reader.
func BenchmarkReadBatchXNet(b *testing.B) {
	rx, feed := batchPair(b)
	pc := ipv4.NewPacketConn(rx)
	ms := make([]ipv4.Message, 8)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	got := 0
	for i := 0; i < b.N; i++ {
		if got == 0 {
			feed()
		}
		n, err := pc.ReadBatch(ms, 0)
		if err != nil {
			b.Fatal(err)
		}
		got = (got + n) % 8
	}
}

// BenchmarkReadBatchEngine reads the same batches with the engine's
// reader, an op being one batch as above. The socket is closed after b.N
// batches to end it, from another goroutine: Close waits for the read in
// progress.
func BenchmarkReadBatchEngine(b *testing.B) {
	rx, feed := batchPair(b)
	bc, err := newBatchConn(rx, 8)
	if err != nil {
		b.Fatal(err)
	}
	ms := make([]message, 8)
	for i := range ms {
		ms[i].buf = make([]byte, 1500)
	}
	b.ReportAllocs()
	b.ResetTimer()
	batches, got := 0, 0
	feed()
	bc.serve(ms, func(n int) {
		batches++
		if batches == b.N {
			go rx.Close()
		}
		if batches >= b.N {
			return
		}
		if got = (got + n) % 8; got == 0 {
			feed()
		}
	})
}
