//go:build linux

package rfc

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"fastcall/rfc/internal/testenv"
	"fastcall/wire"
)

// scriptFD is the descriptor a scripted mmsgConn hands its system calls.
const scriptFD = ^uintptr(0)

var errScriptStuck = errors.New("scripted system call never completed")

// scriptConn is a syscall.RawConn with no socket behind it: Read and
// Write run f again, as the poller would after the next readiness, until
// f reports done, and give up after a bound so that a broken script fails
// instead of hanging.
type scriptConn struct{}

func (scriptConn) Control(f func(fd uintptr)) error { f(scriptFD); return nil }
func (scriptConn) Read(f func(fd uintptr) bool) error {
	for i := 0; i < 1000; i++ {
		if f(scriptFD) {
			return nil
		}
	}
	return errScriptStuck
}
func (c scriptConn) Write(f func(fd uintptr) bool) error { return c.Read(f) }

// step is one scripted system call result: n datagrams (all offered when
// n is 0), or the error number e.
type step struct {
	n int
	e syscall.Errno
}

// sendScript plays steps for sendmmsg, then sends everything offered, and
// records what went out.
type sendScript struct {
	steps []step
	calls int
	out   []string // payload@address of each datagram sent, in order
}

func (s *sendScript) sendmmsg(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno) {
	st := step{}
	if s.calls < len(s.steps) {
		st = s.steps[s.calls]
	}
	s.calls++
	if st.e != 0 {
		return -1, st.e
	}
	n := len(hs)
	if st.n > 0 && st.n < n {
		n = st.n
	}
	for i := range hs[:n] {
		h := &hs[i].Hdr
		b := unsafe.Slice(h.Iov.Base, h.Iov.Len)
		a := sockaddrToAddrPort((*unix.RawSockaddrInet6)(unsafe.Pointer(h.Name)))
		s.out = append(s.out, string(b)+"@"+a.String())
	}
	return n, 0
}

func scriptBatch(k int) ([]message, []string) {
	ms := make([]message, k)
	want := make([]string, k)
	for i := range ms {
		ms[i].buf = []byte("m" + strconv.Itoa(i))
		ms[i].n = len(ms[i].buf)
		ms[i].addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1000+i))
		want[i] = string(ms[i].buf) + "@" + ms[i].addr.String()
	}
	return ms, want
}

// A batch goes out exactly once and in order whatever sendmmsg does: send
// a part, fail with EINTR or EAGAIN (retried), refuse a message once
// (retried) or twice (counted and skipped).
func TestWriteScripted(t *testing.T) {
	const k = 7
	eintr, eagain := step{e: unix.EINTR}, step{e: unix.EAGAIN}
	enobufs, erefused := step{e: unix.ENOBUFS}, step{e: unix.ECONNREFUSED}
	one := step{n: 1}
	always := make([]step, 100)
	for i := range always {
		always[i] = enobufs
	}
	for _, tc := range []struct {
		name  string
		steps []step
		skip  []int // messages refused for good
		err   error
	}{
		{"whole", nil, nil, nil},
		{"one-at-a-time", []step{one, one, one, one, one, one, one}, nil, nil},
		{"partial-mixed", []step{{n: 2}, one, {n: 3}}, nil, nil},
		{"eintr", []step{eintr, eintr, one, eintr, {n: 2}}, nil, nil},
		{"eagain", []step{eagain, one, eagain, eagain, one}, nil, nil},
		{"enobufs-once", []step{{n: 2}, enobufs, one}, nil, nil},
		{"refused-twice", []step{one, erefused, erefused, one}, []int{1}, unix.ECONNREFUSED},
		{"refused-last", []step{{n: 6}, erefused, erefused}, []int{6}, unix.ECONNREFUSED},
		{"enobufs-always", always, []int{0, 1, 2, 3, 4, 5, 6}, unix.ENOBUFS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sendScript{steps: tc.steps}
			m := newMmsgConn(scriptConn{}, false, k, mmsgSys{sendmmsg: s.sendmmsg})
			ms, all := scriptBatch(k)
			var want []string
			for i, w := range all {
				skipped := false
				for _, j := range tc.skip {
					skipped = skipped || i == j
				}
				if !skipped {
					want = append(want, w)
				}
			}
			w := newWriter(k)
			sent, err := m.write(w, ms)
			if sent != len(want) || !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
				t.Fatalf("write: %d sent, %v; want %d, %v", sent, err, len(want), tc.err)
			}
			if len(s.out) != len(want) {
				t.Fatalf("went out %q, want %q", s.out, want)
			}
			for i := range want {
				if s.out[i] != want[i] {
					t.Fatalf("went out %q, want %q", s.out, want)
				}
			}
			// The writer is reusable: a second batch goes out whole.
			s.steps, s.calls, s.out = nil, 0, nil
			if sent, err := m.write(w, ms); sent != k || err != nil || len(s.out) != k {
				t.Fatalf("second batch: %d sent, %v, went out %q", sent, err, s.out)
			}
		})
	}
}

// Through a real socket, a sendmmsg that takes one message at a time
// still delivers the batch exactly once and in order.
func TestWritePartialSocket(t *testing.T) {
	rx, tx := testenv.UDP(t), testenv.UDP(t)
	raw, err := tx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	one := func(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno) {
		calls++
		return kernelSendmmsg(fd, hs[:1])
	}
	const k = 16
	m := newMmsgConn(raw, false, k, mmsgSys{recvmmsg: kernelRecvmmsg, sendmmsg: one})
	ms := make([]message, k)
	for i := range ms {
		ms[i].buf = []byte("datagram-" + strconv.Itoa(i))
		ms[i].n = len(ms[i].buf)
		ms[i].addr = rx.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	if sent, err := m.write(newWriter(k), ms); sent != k || err != nil {
		t.Fatalf("write: %d sent, %v", sent, err)
	}
	if calls != k {
		t.Fatalf("%d sendmmsg calls, want %d", calls, k)
	}
	b := make([]byte, 64)
	for i := 0; i < k; i++ {
		rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rx.Read(b)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if got, want := string(b[:n]), string(ms[i].buf); got != want {
			t.Fatalf("datagram %d is %q, want %q", i, got, want)
		}
	}
	rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := rx.Read(b); err == nil {
		t.Fatalf("extra datagram %q", b[:n])
	}
}

// datagram is one scripted datagram for recvmmsg: its sender and its
// length on the wire (longer than the buffer: truncated).
type datagram struct {
	from netip.AddrPort
	size int
}

// recvScript plays batches of datagrams and error numbers for recvmmsg,
// then EBADF.
type recvScript struct {
	steps []any // []datagram or syscall.Errno
}

func (s *recvScript) recvmmsg(fd uintptr, hs []unix.Mmsghdr) (int, syscall.Errno) {
	if len(s.steps) == 0 {
		return -1, unix.EBADF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	if e, ok := st.(syscall.Errno); ok {
		return -1, e
	}
	dgs := st.([]datagram)
	n := min(len(dgs), len(hs))
	for i, d := range dgs[:n] {
		h := &hs[i]
		b := unsafe.Slice(h.Hdr.Iov.Base, h.Hdr.Iov.Len)
		copied := min(d.size, len(b))
		for j := range b[:copied] {
			b[j] = 'x'
		}
		h.Len = uint32(copied)
		h.Hdr.Flags = 0
		if d.size > len(b) {
			h.Hdr.Flags = unix.MSG_TRUNC
		}
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(h.Hdr.Name))
		if d.from.Addr().Is4() {
			sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
			*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: d.from.Addr().As4()}
			p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
			p[0], p[1] = byte(d.from.Port()>>8), byte(d.from.Port())
		} else {
			*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: d.from.Addr().As16()}
			p := (*[2]byte)(unsafe.Pointer(&sa.Port))
			p[0], p[1] = byte(d.from.Port()>>8), byte(d.from.Port())
		}
	}
	return n, 0
}

// Whatever recvmmsg reports, a datagram's length never exceeds its
// buffer; a truncated datagram reads as the whole buffer, one byte past
// the limit the reader's buffers are sized to, and so is too big. EINTR
// and EAGAIN are retried, other errors end serve for the reader to count.
func TestReadScripted(t *testing.T) {
	const limit = 100
	v4 := netip.MustParseAddrPort("127.0.0.1:7")
	v6 := netip.MustParseAddrPort("[::1]:8")
	mapped := netip.MustParseAddrPort("[::ffff:127.0.0.1]:9")
	s := &recvScript{steps: []any{
		[]datagram{{v4, 10}, {v4, 2000}, {v6, limit + 1}, {mapped, 65507}},
		unix.EINTR,
		unix.EAGAIN,
		[]datagram{{v6, 0}, {v4, limit}},
		unix.ECONNREFUSED,
		[]datagram{{mapped, limit + 2}},
	}}
	m := newMmsgConn(scriptConn{}, true, 4, mmsgSys{recvmmsg: s.recvmmsg})
	ms := make([]message, 4)
	for i := range ms {
		ms[i].buf = make([]byte, limit+1)
	}
	type seen struct {
		n    int
		from netip.AddrPort
	}
	var got []seen
	handle := func(n int) {
		for i := range ms[:n] {
			if ms[i].n < 0 || ms[i].n > len(ms[i].buf) {
				t.Errorf("datagram %d: length %d past its buffer of %d", len(got), ms[i].n, len(ms[i].buf))
			}
			got = append(got, seen{ms[i].n, ms[i].addr})
		}
	}
	if err := m.serve(ms, handle); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("first serve: %v", err)
	}
	if err := m.serve(ms, handle); !errors.Is(err, unix.EBADF) {
		t.Fatalf("second serve: %v", err)
	}
	v4m := netip.MustParseAddrPort("127.0.0.1:9")
	want := []seen{{10, v4}, {limit + 1, v4}, {limit + 1, v6}, {limit + 1, v4m}, {0, v6}, {limit, v4}, {limit + 1, v4m}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("datagram %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// TestParseLocalBroadcast: the local address a datagram is answered from
// is the IPv4 packet info's local address (ipi_spec_dst), not the header's
// destination: for a datagram sent to a subnet's broadcast address they
// differ, and a reply from the broadcast address is refused by the kernel.
func TestParseLocalBroadcast(t *testing.T) {
	b := make([]byte, pktCtl)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	*pi = unix.Inet4Pktinfo{Ifindex: 2, Spec_dst: [4]byte{10, 1, 0, 5}, Addr: [4]byte{10, 1, 0, 255}}
	if got, want := parseLocal(b[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)]), netip.MustParseAddr("10.1.0.5"); got != want {
		t.Fatalf("a datagram to 10.1.0.255 at 10.1.0.5 is answered from %v, want %v", got, want)
	}
}

// TestWildcardRepliesFromCalledAddress: an endpoint bound to a wildcard
// address answers from the address each request was sent to, the only
// one its caller accepts a reply from, whatever source the route to the
// caller would pick: replies made by the reader (an inline call, the
// restart rule's refusal of a first non-idempotent call), by a worker
// and by a deferred handler, on an IPv4 and on a dual-stack socket. The
// caller reaches the wildcard node through 127.0.0.2, the route back to
// it picks 127.0.0.1: every reply was dropped as late and the calls
// timed out.
func TestWildcardRepliesFromCalledAddress(t *testing.T) {
	for _, bind := range []string{"0.0.0.0:0", "[::]:0"} {
		srv := newTestServer(t, func(c *Config) { c.Addr = bind })
		const callLater = wire.CallUserBase + 61
		err := srv.RegisterDeferred(callLater, "later", nil, Idempotent, func(r *Request, d *Deferred) wire.Errno {
			go d.Reply(wire.OK)
			return wire.OK
		})
		if err != nil {
			t.Fatal(err)
		}
		cli := newTestEndpoint(t, nil)
		dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), srv.Addr().Port())
		hello := func(p *wire.Params) { p.Bytes([]byte("hello")) }
		for _, c := range []struct {
			name string
			no   uint16
			p    func(*wire.Params)
		}{{"inline", callEcho, hello}, {"worker", callEchoW, hello}, {"deferred", callLater, nil}, {"fenced first call", callIncr, nil}} {
			var ps *wire.Params
			if c.p != nil {
				ps = params(c.p)
			}
			if err := cli.Call(ctxTimeout(t, 2*time.Second), dst, c.no, ps, nil); err != nil {
				t.Fatalf("%s: %s call to %v: %v (dropped: %v)", bind, c.name, dst, err, cli.Stats().Drops)
			}
		}
	}
}
