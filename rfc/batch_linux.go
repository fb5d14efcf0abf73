//go:build linux

package rfc

// This file holds the call engine's only use of unsafe: the recvmmsg and
// sendmmsg system calls need the kernel's msghdr, iovec and sockaddr
// layouts, filled with pointers into buffers that live as long as the
// batchConn. Nothing else in the package touches memory this way.

import (
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgConn is the Linux batchConn: one recvmmsg or sendmmsg per batch.
// The read side state (rhdr, riov, rname) is owned by the single reader
// goroutine; the write side is guarded by the caller passing distinct
// writeState values (one per writing goroutine).
type mmsgConn struct {
	raw   syscall.RawConn
	sys   mmsgSys
	v6    bool // AF_INET6 socket: IPv4 peers are written as mapped addresses
	rhdr  []unix.Mmsghdr
	riov  []unix.Iovec
	rname []unix.RawSockaddrInet6
	rctl  []byte // per header pktCtl bytes for the local address, on a wildcard socket; else nil
	rms   []message
	rn    int
	rerr  syscall.Errno
	// serve's state: the batch handler and the loop run under RawRead.
	handle func(n int)
	serveF func(fd uintptr) bool
}

// mmsgSys is the pair of system calls an mmsgConn makes, given the
// headers to fill or to send and returning the count or the error number
// as the kernel does. newBatchConn passes the kernel's (kernelMmsg); tests
// pass scripted ones, to reach partial sends, truncation and errors.
type mmsgSys struct {
	recvmmsg func(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno)
	sendmmsg func(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno)
}

var kernelMmsg = mmsgSys{recvmmsg: kernelRecvmmsg, sendmmsg: kernelSendmmsg}

// kernelRecvmmsg reads up to len(hs) datagrams without blocking.
func kernelRecvmmsg(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hs[0])),
		uintptr(len(hs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), e
}

// kernelSendmmsg sends up to len(hs) datagrams without blocking.
func kernelSendmmsg(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hs[0])),
		uintptr(len(hs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), e
}

func newBatchConn(c *net.UDPConn, size int) (batchConn, error) {
	raw, v6, err := rawSocket(c)
	if err != nil {
		return nil, err
	}
	m := newMmsgConn(raw, v6, size, kernelMmsg)
	if wildcard(c) && recvLocal(raw) {
		m.rctl = make([]byte, size*pktCtl)
	}
	return m, nil
}

// wildcard reports whether c is bound to a wildcard address (0.0.0.0,
// ::), where the kernel picks the source address of what it sends by
// the route to the destination, not by the address a request came to.
func wildcard(c *net.UDPConn) bool {
	a, ok := c.LocalAddr().(*net.UDPAddr)
	return ok && a.IP.IsUnspecified()
}

// recvLocal asks the kernel to tell, with each datagram read from raw,
// the address it was sent to (IP_PKTINFO; on an IPv6 socket
// IPV6_RECVPKTINFO too, IPv4 datagrams of a dual-stack socket coming
// with the former). It reports whether it may.
func recvLocal(raw syscall.RawConn) bool {
	var e4, e6 error
	if err := raw.Control(func(fd uintptr) {
		e4 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		e6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	}); err != nil {
		return false
	}
	return e4 == nil || e6 == nil
}

// pktCtl is the control space of one datagram for its local address:
// room for either packet-info message.
var pktCtl = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo)

// parseLocal returns the local address to answer a datagram from, read
// from its control messages b, or an invalid address if they name none.
// For IPv4 that is the packet info's local address (ipi_spec_dst, ip(7)),
// not its header's destination (ipi_addr): they differ for a datagram
// sent to a broadcast address, which no datagram may be sent from.
func parseLocal(b []byte) netip.Addr {
	hdr := unix.CmsgLen(0)
	for len(b) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		n := int(h.Len)
		if n < hdr || n > len(b) {
			return netip.Addr{}
		}
		data := b[hdr:n]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(pi.Spec_dst)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			a := netip.AddrFrom16(pi.Addr).Unmap()
			if pi.Ifindex != 0 && needsZone(a) {
				a = a.WithZone(zoneText(pi.Ifindex))
			}
			return a
		}
		b = b[min(unix.CmsgSpace(n-hdr), len(b)):]
	}
	return netip.Addr{}
}

// putLocal writes into b a control message that sends a datagram from
// local, and returns its length; 0 when local is no address to send
// from (multicast or broadcast), leaving the choice to the kernel.
func putLocal(b []byte, local netip.Addr) int {
	if local.IsMulticast() || local == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return 0
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	data := b[unix.CmsgLen(0):]
	if local.Is4() {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
		*pi = unix.Inet4Pktinfo{Spec_dst: local.As4()}
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
	*pi = unix.Inet6Pktinfo{Addr: local.As16(), Ifindex: zoneIndex(local.Zone())}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// rawSocket returns c's raw socket and whether it is an IPv6 socket.
func rawSocket(c *net.UDPConn) (syscall.RawConn, bool, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, false, err
	}
	v6, err := socketV6(raw)
	return raw, v6, err
}

// socketV6 reports whether raw is an AF_INET6 socket.
func socketV6(raw syscall.RawConn) (bool, error) {
	var v6 bool
	var serr error
	if err := raw.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		sa, serr = unix.Getsockname(int(fd))
		_, v6 = sa.(*unix.SockaddrInet6)
	}); err != nil {
		return false, err
	}
	return v6, serr
}

// newMmsgConn returns an mmsgConn on raw, reading and writing batches of
// at most size datagrams through sys.
func newMmsgConn(raw syscall.RawConn, v6 bool, size int, sys mmsgSys) *mmsgConn {
	m := &mmsgConn{
		raw:   raw,
		sys:   sys,
		v6:    v6,
		rhdr:  make([]unix.Mmsghdr, size),
		riov:  make([]unix.Iovec, size),
		rname: make([]unix.RawSockaddrInet6, size),
	}
	m.serveF = m.serveLoop
	return m
}

// serve reads batches into ms and runs handle on each until the socket
// fails or closes. The whole loop runs inside one RawRead: after a batch
// shorter than ms the socket was empty, so it goes straight back to the
// poller instead of spending a recvmmsg to learn that again (RawRead
// clears the poller's readiness on entry, which is why a loop of
// readBatch calls cannot skip that read). A datagram that arrives while
// handle runs leaves the poller ready, and the next wait returns at once.
func (m *mmsgConn) serve(ms []message, handle func(n int)) error {
	if len(ms) > len(m.rhdr) {
		ms = ms[:len(m.rhdr)]
	}
	m.rms, m.handle = ms, handle
	m.prepare(ms, len(ms))
	for {
		m.rerr = 0
		if err := m.raw.Read(m.serveF); err != nil {
			return err
		}
		if m.rerr != 0 {
			return m.rerr
		}
	}
}

func (m *mmsgConn) serveLoop(fd uintptr) bool {
	ms := m.rms
	for {
		n, e := m.sys.recvmmsg(fd, m.rhdr[:len(ms)])
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			m.rerr = e
			return true
		}
		m.rn = n
		m.collect(ms)
		m.prepare(ms, min(m.rn+1, len(ms)))
		m.handle(m.rn)
		if m.rn < len(ms) {
			return false
		}
	}
}

// prepare points the first n receive headers at the buffers of ms: all of
// them before the first read, then after each read the ones it filled in
// and the one it stopped at (the kernel writes no others).
func (m *mmsgConn) prepare(ms []message, n int) {
	for i := range ms[:n] {
		m.riov[i].Base = &ms[i].buf[0]
		m.riov[i].SetLen(len(ms[i].buf))
		h := &m.rhdr[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.rname[i]))
		h.Namelen = uint32(unsafe.Sizeof(m.rname[i]))
		h.Iov = &m.riov[i]
		h.SetIovlen(1)
		h.Control = nil
		h.SetControllen(0)
		if m.rctl != nil {
			h.Control = &m.rctl[i*pktCtl]
			h.SetControllen(pktCtl)
		}
		h.Flags = 0
		m.rhdr[i].Len = 0
	}
}

// collect fills in the length and sender of the m.rn datagrams read. A
// datagram the kernel truncated to its buffer reads as the whole buffer
// (message.n), longer than the limit the buffers are sized past.
func (m *mmsgConn) collect(ms []message) {
	for i := 0; i < m.rn; i++ {
		n := int(m.rhdr[i].Len)
		if m.rhdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 || n > len(ms[i].buf) {
			n = len(ms[i].buf)
		}
		ms[i].n = n
		ms[i].addr = sockaddrToAddrPort(&m.rname[i])
		if m.rctl != nil {
			c := m.rctl[i*pktCtl:]
			ms[i].local = parseLocal(c[:min(int(m.rhdr[i].Hdr.Controllen), pktCtl)])
		}
	}
}

// writeState is per-writer scratch for sendmmsg.
type writeState struct {
	hdr  []unix.Mmsghdr
	iov  []unix.Iovec
	name []unix.RawSockaddrInet6
	ctl  []byte                                                   // per header pktCtl bytes: the local address to send from (message.local)
	hs   []unix.Mmsghdr                                           // the headers of the messages not yet sent
	send func(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno) // the conn's sendmmsg
	n    int
	err  syscall.Errno
	f    func(fd uintptr) bool
}

func newWriter(size int) *writeState {
	w := &writeState{
		hdr:  make([]unix.Mmsghdr, size),
		iov:  make([]unix.Iovec, size),
		name: make([]unix.RawSockaddrInet6, size),
		ctl:  make([]byte, size*pktCtl),
	}
	w.f = w.sendmmsg
	return w
}

// sendmmsg is the RawWrite function of write: one sendmmsg of w.hs,
// again at once after EINTR, and after the next readiness after EAGAIN.
func (w *writeState) sendmmsg(fd uintptr) bool {
	for {
		n, e := w.send(fd, w.hs)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.n, w.err = n, e
		return true
	}
}

// write sends ms in order, each message at most once, and returns how
// many went out. sendmmsg may send a part of what it is given; write
// goes on from the first message not sent. An error from sendmmsg is the
// first unsent message's: that message is tried once more (the error may
// be an earlier datagram's, reported now and then cleared by the kernel)
// and then counted out and skipped; err is the last such error.
func (m *mmsgConn) write(w *writeState, ms []message) (sent int, err error) {
	if len(ms) > len(w.hdr) {
		ms = ms[:len(w.hdr)]
	}
	for i := range ms {
		w.iov[i].Base = &ms[i].buf[0]
		w.iov[i].SetLen(ms[i].n)
		h := &w.hdr[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&w.name[i]))
		h.Namelen = addrPortToSockaddr(ms[i].addr, &w.name[i], m.v6)
		h.Iov = &w.iov[i]
		h.SetIovlen(1)
		h.Control = nil
		h.SetControllen(0)
		if ms[i].local.IsValid() {
			c := w.ctl[i*pktCtl : (i+1)*pktCtl]
			if n := putLocal(c, ms[i].local); n > 0 {
				h.Control = &c[0]
				h.SetControllen(n)
			}
		}
		h.Flags = 0
	}
	w.send = m.sys.sendmmsg
	retried := false
	for next := 0; next < len(ms); {
		w.hs = w.hdr[next:len(ms)]
		if werr := m.raw.Write(w.f); werr != nil {
			return sent, werr
		}
		if w.err == 0 && w.n > 0 {
			k := min(w.n, len(ms)-next)
			sent += k
			next += k
			retried = false
			continue
		}
		if !retried {
			retried = true
			continue
		}
		e := w.err
		if e == 0 {
			e = unix.EIO // nothing sent and no error: the kernel never does that
		}
		err = e
		next++
		retried = false
	}
	return sent, err
}

// sockaddrToAddrPort reads a kernel sockaddr_in or sockaddr_in6.
func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(zoneText(sa.Scope_id))
		}
		return peerAddr(netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1])))
	}
	return netip.AddrPort{}
}

// addrPortToSockaddr writes ap as a sockaddr suited to the socket family
// and returns its length: sockaddr_in on an IPv4 socket, sockaddr_in6 (with
// IPv4 peers as mapped addresses, and a zone as the scope id) on an IPv6
// socket.
func addrPortToSockaddr(ap netip.AddrPort, sa *unix.RawSockaddrInet6, v6 bool) uint32 {
	a := ap.Addr()
	if a.Is4() && !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16(), Scope_id: zoneIndex(a.Zone())}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	return unix.SizeofSockaddrInet6
}

// sockWriter sends single datagrams on the endpoint's socket: requests,
// retransmissions, one-way sends and the workers' replies.
//
// Each send is one sendto made under the socket's reference only
// (RawConn.Control), not under its write lock as net.UDPConn's writes
// and RawConn.Write are: the kernel sends a datagram whole, whoever else
// sends at the same time, so the lock orders nothing here, and with many
// callers sending at once they queued on it and parked, one thread
// switch each. The reference keeps the descriptor from being closed and
// reused during the call. A socket whose buffer is full (EAGAIN) is
// written the locked way, which waits in the poller until it drains.
type sockWriter struct {
	c    *net.UDPConn
	raw  syscall.RawConn
	v6   bool
	sys  func(fd uintptr, b []byte, sa *unix.RawSockaddrInet6, salen uint32) syscall.Errno
	next atomic.Uint32
	slot [sendSlots]sendTo
}

// sendSlots is how many sends may run at once without the write lock; a
// send that finds every slot taken is written the locked way. The slots
// are fixed, each with its function made once, so a send allocates
// nothing (a sync.Pool may drop what it holds at any time, and does so
// on purpose under the race detector).
const sendSlots = 64

// sendTo is the state of one sendto under Control.
type sendTo struct {
	busy  atomic.Bool
	w     *sockWriter
	b     []byte
	sa    unix.RawSockaddrInet6
	salen uint32
	err   syscall.Errno
	f     func(fd uintptr)
	ctl   []byte // control space for a local address (writeFrom)
}

func newSockWriter(c *net.UDPConn) (*sockWriter, error) {
	raw, v6, err := rawSocket(c)
	if err != nil {
		return nil, err
	}
	w := &sockWriter{c: c, raw: raw, v6: v6, sys: kernelSendto}
	for i := range w.slot {
		s := &w.slot[i]
		s.w, s.f = w, s.send
		s.ctl = make([]byte, pktCtl)
	}
	return w, nil
}

// take returns a free slot, or nil when every slot is taken.
func (w *sockWriter) take() *sendTo {
	start := w.next.Add(1)
	for i := range uint32(sendSlots) {
		s := &w.slot[(start+i)%sendSlots]
		if !s.busy.Load() && s.busy.CompareAndSwap(false, true) {
			return s
		}
	}
	return nil
}

// kernelSendto sends b to sa without blocking.
func kernelSendto(fd uintptr, b []byte, sa *unix.RawSockaddrInet6, salen uint32) syscall.Errno {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(p), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(sa)), uintptr(salen))
	return e
}

func (s *sendTo) send(fd uintptr) {
	for {
		s.err = s.w.sys(fd, s.b, &s.sa, s.salen)
		if s.err != unix.EINTR {
			return
		}
	}
}

// write sends b to dst once.
func (w *sockWriter) write(b []byte, dst netip.AddrPort) error {
	s := w.take()
	if s == nil {
		_, err := w.c.WriteToUDPAddrPort(b, dst)
		return err
	}
	s.b = b
	s.salen = addrPortToSockaddr(dst, &s.sa, w.v6)
	err := w.raw.Control(s.f)
	e := s.err
	s.b = nil
	s.busy.Store(false)
	if err != nil {
		return err
	}
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		_, err = w.c.WriteToUDPAddrPort(b, dst)
		return err
	}
	return e
}

// writeFrom sends b to dst once from the local address local (a reply on
// a wildcard socket, message.local), or as write does when local is
// invalid. It writes the locked way, with the control message in a
// slot's space, or in space of its own when every slot is taken.
func (w *sockWriter) writeFrom(b []byte, dst netip.AddrPort, local netip.Addr) error {
	if !local.IsValid() {
		return w.write(b, dst)
	}
	var ctl []byte
	if s := w.take(); s != nil {
		ctl = s.ctl
		defer s.busy.Store(false)
	} else {
		ctl = make([]byte, pktCtl)
	}
	n := putLocal(ctl, local)
	_, _, err := w.c.WriteMsgUDPAddrPort(b, ctl[:n], dst)
	return err
}
