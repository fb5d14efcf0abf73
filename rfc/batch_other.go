//go:build !linux

package rfc

import (
	"net"
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

func (u *udpConn) write(w *writeState, ms []message) (int, error) {
	for i := range ms {
		if _, err := u.c.WriteToUDPAddrPort(ms[i].buf[:ms[i].n], ms[i].addr); err != nil {
			return i, err
		}
	}
	return len(ms), nil
}
