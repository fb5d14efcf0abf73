package rfc

import (
	"net"
	"net/netip"
)

// Transport is the datagram boundary of an endpoint that does not own a
// UDP socket: an in-memory network (rfc/simnet) in the simulation. An
// endpoint opened with OpenTransport reads and writes every datagram
// through it, and uses nothing of the kernel's: no socket, no recvmmsg or
// sendmmsg, no eventfd bell (a caller parks on its call's channel), so
// that under testing/synctest every goroutine of the endpoint blocks only
// on channels and sync primitives.
//
// Recv blocks until a datagram arrives, copies it into b (cut to len(b),
// as a socket read is) and returns its length and sender; once the
// transport is closed it returns net.ErrClosed. Send hands one datagram to
// the network and does not wait for its delivery. LocalAddr is the
// address peers send to. Close ends every Recv. All four are safe for
// concurrent use.
type Transport interface {
	Recv(b []byte) (int, netip.AddrPort, error)
	Send(b []byte, dst netip.AddrPort) error
	LocalAddr() netip.AddrPort
	Close() error
}

// incarnationSource is a Transport that names the endpoint's first
// incarnation, so that a simulated run does not depend on crypto/rand.
// Zero means: draw one as a socket endpoint does.
type incarnationSource interface {
	FirstIncarnation() uint32
}

// transportConn is the batchConn of a Transport: one datagram per read.
type transportConn struct{ t Transport }

func (c transportConn) serve(ms []message, handle func(n int)) error {
	if len(ms) == 0 {
		return nil
	}
	for {
		n, addr, err := c.t.Recv(ms[0].buf)
		if err != nil {
			return err
		}
		ms[0].n, ms[0].addr = n, peerAddr(addr)
		handle(1)
	}
}

// write sends ms in order, each once; a closed transport ends the batch.
func (c transportConn) write(w *writeState, ms []message) (sent int, err error) {
	for i := range ms {
		if werr := c.t.Send(ms[i].buf[:ms[i].n], ms[i].addr); werr != nil {
			if werr == net.ErrClosed {
				return sent, werr
			}
			err = werr
			continue
		}
		sent++
	}
	return sent, err
}

// ListenTransport is Listen on a Transport instead of a UDP socket;
// cfg.Addr is not used.
func ListenTransport(cfg Config, t Transport) (*Endpoint, error) {
	return started(OpenTransport(cfg, t))
}

// OpenTransport is Open on a Transport instead of a UDP socket; cfg.Addr
// is not used. Close closes t.
func OpenTransport(cfg Config, t Transport) (*Endpoint, error) {
	if t == nil {
		return nil, BadConfig("rfc", "Transport", nil, "nil")
	}
	codec, err := newCodec(cfg)
	if err != nil {
		return nil, err
	}
	return open(cfg, codec, nil, t)
}

// newBatchConn returns a batchConn on the endpoint's socket or transport.
func (ep *Endpoint) newBatchConn() (batchConn, error) {
	if ep.tr != nil {
		return transportConn{ep.tr}, nil
	}
	return newBatchConn(ep.conn, ep.cfg.BatchSize)
}

// closeConn closes the endpoint's socket or transport.
func (ep *Endpoint) closeConn() error {
	if ep.tr != nil {
		return ep.tr.Close()
	}
	return ep.conn.Close()
}
