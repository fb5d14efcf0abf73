//go:build !linux

package rfc

import (
	"errors"
	"net"
	"net/netip"
)

// udpConn is the portable batchConn: one datagram per system call.
type udpConn struct{ c *net.UDPConn }

func newBatchConn(c *net.UDPConn, size int) (batchConn, error) { return &udpConn{c}, nil }

type writeState struct{}

func newWriter(size int) *writeState { return &writeState{} }

func (u *udpConn) readBatch(ms []message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	// A datagram longer than the buffer is cut to it: n is then
	// len(buf), past the reader's limit.
	n, addr, err := u.c.ReadFromUDPAddrPort(ms[0].buf)
	if err != nil {
		return 0, err
	}
	ms[0].n, ms[0].addr = n, peerAddr(addr)
	return 1, nil
}

func (u *udpConn) serve(ms []message, handle func(n int)) error {
	for {
		n, err := u.readBatch(ms)
		if err != nil {
			return err
		}
		handle(n)
	}
}

// write sends ms in order, as mmsgConn.write does: a message the kernel
// refuses is tried once more and then counted out and skipped.
func (u *udpConn) write(w *writeState, ms []message) (sent int, err error) {
	for i := range ms {
		for try := 0; try < 2; try++ {
			_, werr := u.c.WriteToUDPAddrPort(ms[i].buf[:ms[i].n], ms[i].addr)
			if werr == nil {
				sent++
				break
			}
			if errors.Is(werr, net.ErrClosed) {
				return sent, werr
			}
			err = werr
		}
	}
	return sent, err
}

// sockWriter sends single datagrams on the endpoint's socket.
type sockWriter struct{ c *net.UDPConn }

func newSockWriter(c *net.UDPConn) (*sockWriter, error) { return &sockWriter{c}, nil }

// write sends b to dst once.
func (w *sockWriter) write(b []byte, dst netip.AddrPort) error {
	_, err := w.c.WriteToUDPAddrPort(b, dst)
	return err
}

// writeFrom is write: the local address of a reply on a wildcard socket
// (message.local) is known on Linux only.
func (w *sockWriter) writeFrom(b []byte, dst netip.AddrPort, _ netip.Addr) error {
	return w.write(b, dst)
}
