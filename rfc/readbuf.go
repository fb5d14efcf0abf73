package rfc

import "net"

// socketReadBuffer is the receive buffer (SO_RCVBUF) an endpoint's socket
// asks the kernel for. A node that fans one operation out to many peers
// (a dispatch to many targets, a registry center pushing to every
// subscriber) gets their replies in one burst; with the kernel's default
// buffer the burst overflows it whenever the reader is not scheduled at
// once, and every reply dropped costs a retransmission timeout. The
// kernel caps the request at net.core.rmem_max; the buffer is a limit,
// not memory taken up front.
const socketReadBuffer = 4 << 20

// growReadBuffer asks for socketReadBuffer on c. It is best effort: a
// refusal leaves the kernel's default, as before.
func growReadBuffer(c *net.UDPConn) {
	_ = c.SetReadBuffer(socketReadBuffer)
}
