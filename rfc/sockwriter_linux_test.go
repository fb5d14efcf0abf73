//go:build linux

package rfc

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// A caller's send does not wait for the socket's write lock: a sendmmsg
// parked on a full socket holds that lock, and calls go out meanwhile.
func TestSendWithoutWriteLock(t *testing.T) {
	srv, cli := newTestPair(t)
	raw, err := cli.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	release := make(chan struct{})
	go raw.Write(func(uintptr) bool {
		close(held)
		<-release
		return true
	})
	<-held
	defer close(release)
	res := make(chan error, 1)
	go func() {
		var rep Reply
		p := params(func(p *wire.Params) { p.Int64(2); p.Int64(3) })
		err := cli.Call(ctxTimeout(t, 10*time.Second), srv.Addr(), callAdd, p, &rep)
		if err == nil && rep.Param(0).Int64() != 5 {
			t.Errorf("2+3 = %d", rep.Param(0).Int64())
		}
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call waited for the socket's write lock")
	}
}

// sockWriter retries a sendto cut by a signal, and writes a datagram the
// full socket refused (EAGAIN) the blocking way: each datagram arrives
// once.
func TestSockWriterRetries(t *testing.T) {
	for _, script := range [][]syscall.Errno{{unix.EINTR, 0}, {unix.EAGAIN}, {unix.EINTR, unix.EAGAIN}} {
		_, b, w := writerPair(t)
		calls := 0
		kernel := w.sys
		w.sys = func(fd uintptr, p []byte, sa *unix.RawSockaddrInet6, salen uint32) syscall.Errno {
			calls++
			if e := script[calls-1]; e != 0 {
				return e
			}
			return kernel(fd, p, sa, salen)
		}
		dst := b.LocalAddr().(*net.UDPAddr).AddrPort()
		for i := 0; i < 2; i++ {
			calls = 0
			if err := w.write([]byte{byte(i), 'x'}, dst); err != nil {
				t.Fatalf("%v: %v", script, err)
			}
			if calls != len(script) {
				t.Fatalf("%v: %d sendto calls", script, calls)
			}
		}
		buf := make([]byte, 16)
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := 0; i < 2; i++ {
			n, _, err := b.ReadFromUDPAddrPort(buf)
			if err != nil || n != 2 || buf[0] != byte(i) {
				t.Fatalf("%v: datagram %d: %q %v", script, i, buf[:n], err)
			}
		}
		b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := b.ReadFromUDPAddrPort(buf); err == nil {
			t.Fatalf("%v: extra datagram %q", script, buf[:n])
		}
	}
}

// With every slot taken a send is written the locked way, once; a slot
// freed is taken again, and a send leaves its slot free.
func TestSockWriterSlotsTaken(t *testing.T) {
	_, b, w := writerPair(t)
	calls := 0
	kernel := w.sys
	w.sys = func(fd uintptr, p []byte, sa *unix.RawSockaddrInet6, salen uint32) syscall.Errno {
		calls++
		return kernel(fd, p, sa, salen)
	}
	var taken []*sendTo
	for s := w.take(); s != nil; s = w.take() {
		taken = append(taken, s)
	}
	if len(taken) != sendSlots {
		t.Fatalf("%d slots taken, want %d", len(taken), sendSlots)
	}
	dst := b.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := w.write([]byte{0, 'x'}, dst); err != nil || calls != 0 {
		t.Fatalf("send with every slot taken: %v, %d sendto calls through a slot", err, calls)
	}
	taken[7].busy.Store(false)
	if err := w.write([]byte{1, 'x'}, dst); err != nil || calls != 1 {
		t.Fatalf("send with one slot free: %v, %d sendto calls through a slot", err, calls)
	}
	if !taken[7].busy.CompareAndSwap(false, true) {
		t.Fatal("the send left its slot taken")
	}
	buf := make([]byte, 16)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 2; i++ {
		n, _, err := b.ReadFromUDPAddrPort(buf)
		if err != nil || n != 2 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %q %v", i, buf[:n], err)
		}
	}
}

// writerPair opens two loopback sockets, closed when the test ends, and a
// sockWriter on the first.
func writerPair(t *testing.T) (a, b *net.UDPConn, w *sockWriter) {
	t.Helper()
	var err error
	for _, c := range []**net.UDPConn{&a, &b} {
		if *c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*c).Close() })
	}
	if w, err = newSockWriter(a); err != nil {
		t.Fatal(err)
	}
	return a, b, w
}
