package center

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestTouchOnlyFromPeer: registry.CallTouch is the other center forwarding a
// lease renewal. Any other sender (any node with the key, or anyone in
// checksum mode) that sends it with a dead node's address as owner would
// keep that node's instances registered for as long as it liked. A call
// between centers (touch, replicate, log sync) that does not come from the
// configured peer center is refused EPERM and counted.
func TestTouchOnlyFromPeer(t *testing.T) {
	p := startPair(t, nil)
	owner := regtest.Endpoint(t, 7, "")
	c := newClient(t, owner, p.Addrs()...)
	ctx := rfctest.Context(t, 5*time.Second)
	if _, err := c.Register(ctx, "db", "10.0.0.1:5432", nil, time.Second); err != nil {
		t.Fatal(err)
	}
	stranger := regtest.Endpoint(t, 8, "")
	e := regtest.Call(t, stranger, p.EPs[0].Addr(), registry.CallTouch, func(ps *wire.Params) {
		ps.Uint64(1) // claims to be center 1
		ps.String(owner.Addr().String())
	})
	if e != wire.EPERM {
		t.Fatalf("touch from a node that is not the peer center: %v, want EPERM", e)
	}

	// The other calls between centers are refused the same way.
	e = regtest.Call(t, stranger, p.EPs[0].Addr(), registry.CallReplicate, func(ps *wire.Params) {
		ps.Uint64(1)
		ps.Uint64(0)
		ps.String("db/x")
		ps.Bytes([]byte{1, 2, 3})
	})
	if e != wire.EPERM {
		t.Fatalf("replicate from a node that is not the peer center: %v, want EPERM", e)
	}
	e = regtest.Call(t, stranger, p.EPs[0].Addr(), registry.CallLogSync, func(ps *wire.Params) {
		for i := 0; i < 4; i++ {
			ps.Uint64(1)
		}
	})
	if e != wire.EPERM {
		t.Fatalf("log sync from a node that is not the peer center: %v, want EPERM", e)
	}
	if n := p.Cs[0].Stats().NotPeer; n != 3 {
		t.Fatalf("NotPeer = %d, want 3", n)
	}
}

// TestFromPeerForms: the peer is recognised in the form the engine names
// a sender: an IPv4-mapped Peer as IPv4, and a link-local Peer whose zone
// names an interface ("fe80::1%lo") by the interface's index, the zone
// every datagram from it carries. Another port, address or zone is not
// the peer.
func TestFromPeerForms(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no interface lo")
	}
	idx := strconv.Itoa(lo.Index)
	cases := []struct {
		peer, from string
		want       bool
	}{
		{"127.0.0.1:7001", "127.0.0.1:7001", true},
		{"[::ffff:127.0.0.1]:7001", "127.0.0.1:7001", true},
		{"127.0.0.1:7001", "127.0.0.1:7002", false},
		{"127.0.0.1:7001", "127.0.0.2:7001", false},
		{"[fe80::1%lo]:7001", "[fe80::1%" + idx + "]:7001", true},
		{"[fe80::1%" + idx + "]:7001", "[fe80::1%" + idx + "]:7001", true},
		{"[fe80::1%lo]:7001", "[fe80::1%" + strconv.Itoa(lo.Index+1000) + "]:7001", false},
		{"[fe80::1%lo]:7001", "[fe80::1]:7001", false},
		{"", "127.0.0.1:7001", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
	}
	for _, tc := range cases {
		c := &Center{}
		if tc.peer != "" {
			c.cfg.Peer = netip.MustParseAddrPort(tc.peer)
		}
		if got := c.fromPeer(netip.MustParseAddrPort(tc.from)); got != tc.want {
			t.Errorf("peer %q, sender %s: fromPeer %v, want %v", tc.peer, tc.from, got, tc.want)
		}
	}
}

// TestTouchSenderIndex: from the peer center's address, a touch whose
// sender index is not the other center's (the receiver's own, or past the
// two indexes) is refused EINVAL and counted as malformed; the other
// center's index is answered.
func TestTouchSenderIndex(t *testing.T) {
	p := startPair(t, nil)
	for _, tc := range []struct {
		sender uint64
		want   wire.Errno
	}{{0, wire.EINVAL}, {2, wire.EINVAL}, {1, wire.OK}} {
		before := p.Cs[0].Stats().Malformed
		e := regtest.Call(t, p.EPs[1], p.EPs[0].Addr(), registry.CallTouch, func(ps *wire.Params) {
			ps.Uint64(tc.sender)
			ps.String("127.0.0.1:9")
		})
		if e != tc.want {
			t.Fatalf("touch from the peer naming sender %d: %v, want %v", tc.sender, e, tc.want)
		}
		if n := p.Cs[0].Stats().Malformed - before; (n == 1) != (tc.want == wire.EINVAL) {
			t.Fatalf("sender %d: malformed counted %d times", tc.sender, n)
		}
	}
}

// TestPeerChangedForms: the engine names the peer center unmapped (and a
// link-local zone by index); a Peer configured mapped must still be
// recognised as the other center when the engine reports it dead, not
// queued as a dead node whose instances are removed.
func TestPeerChangedForms(t *testing.T) {
	c := &Center{deadQ: make(chan netip.AddrPort, 1), syncKick: make(chan struct{}, 1), log: rfctest.Quiet}
	c.cfg.Peer = netip.MustParseAddrPort("[::ffff:127.0.0.1]:7001")
	c.peerChanged(rfc.PeerInfo{Addr: netip.MustParseAddrPort("127.0.0.1:7001"), State: rfc.PeerDead})
	if len(c.deadQ) != 0 {
		t.Fatalf("the peer center, declared dead, was queued as a dead node")
	}
	c.peerChanged(rfc.PeerInfo{Addr: netip.MustParseAddrPort("127.0.0.1:7001"), State: rfc.PeerAlive})
	if len(c.syncKick) != 1 {
		t.Fatalf("the peer center back alive did not start anti-entropy")
	}
}

// TestServiceMetaBound: a registration carrying registry.MaxServiceMeta
// bytes of metadata is accepted (the bound rfcd checks its config
// against is not above what a center takes), and an address past
// registry.MaxAddrLen is refused.
func TestServiceMetaBound(t *testing.T) {
	p := startPair(t, nil)
	owner := regtest.Endpoint(t, 7, "")
	c := newClient(t, owner, p.Addrs()...)
	ctx := rfctest.Context(t, 5*time.Second)
	addr := "10.0.0.1:5432"
	room := registry.MaxServiceMeta(wire.DefaultMaxDatagram, "db", 7, len(addr))
	if _, err := c.Register(ctx, "db", addr, make([]byte, room), time.Second); err != nil {
		t.Fatalf("metadata of %d bytes, the bound: %v", room, err)
	}
	_, err := c.Register(ctx, "db2", strings.Repeat("x", registry.MaxAddrLen+1), nil, time.Second)
	if e := wire.AsErrno(err); e != wire.EMSGSIZE {
		t.Fatalf("address of %d bytes: %v, want EMSGSIZE", registry.MaxAddrLen+1, err)
	}
}

// hookClock is a stepClock that runs hook once, at the first reading of
// the monotonic clock after it is set, and returns the reading taken
// before hook ran: what hook does happens after the reader read the time.
type hookClock struct {
	*stepClock
	hook atomic.Pointer[func()]
}

func (c *hookClock) MonoNs() int64 {
	now := c.stepClock.MonoNs()
	if h := c.hook.Swap(nil); h != nil {
		(*h)()
	}
	return now
}

// TestRenewDeadlineNeverBack: a lease renewal reads the clock under the
// center's lock, so a lease deadline never moves back. Before, the
// renewal read the clock and then waited for the lock: a registration of
// the same instance that took the lock in between, a moment later, set a
// later deadline, which the renewal then replaced with one from its
// earlier reading. The clock plays that registration right after the
// renewal's reading, whenever the lock is free to let it in (otherwise
// it comes after the renewal); either way the deadline must be the
// registration's.
func TestRenewDeadlineNeverBack(t *testing.T) {
	clk := &hookClock{stepClock: newStepClock()}
	cfg := testCenterConfig(t.TempDir(), 0, netip.AddrPort{})
	cfg.Clock = clk
	cfg.SweepEvery = time.Hour // no sweep takes the lock or reads the clock meanwhile
	c := startLone(t, cfg)
	cl := newClient(t, regtest.Endpoint(t, 7, ""), c.Endpoint().Addr())
	const lease = 10 * time.Second
	if _, err := cl.Register(rfctest.Context(t, 5*time.Second), "db", "10.0.0.1:5432", nil, lease); err != nil {
		t.Fatal(err)
	}
	key := sdk.ServiceKey("db", 7)
	cur, ok := c.Entry(key)
	var r sdk.Record
	if !ok || sdk.ParseRecord(cur, &r) != wire.OK {
		t.Fatalf("no record of %s after the registration", key)
	}
	r.Version = sdk.VersionNext(r.Version, cfg.Index)
	again := sdk.AppendRecord(nil, &r) // the same instance registered again
	const later = time.Second
	registered := false
	register := func() { // c.mu is held
		clk.stepMono(later)
		if _, applied, err := c.applyLocked(key, again, clk.WallMs()); !applied || err != nil {
			t.Errorf("registration again: applied %v, %v", applied, err)
		}
		registered = true
	}
	hook := func() {
		if c.mu.TryLock() {
			register()
			c.mu.Unlock()
		}
	}
	m0 := clk.MonoNs()
	clk.hook.Store(&hook)
	if n := c.renewOwner(string(r.Owner)); n != 1 {
		t.Fatalf("renewal of %s renewed %d instances, want 1", r.Owner, n)
	}
	c.mu.Lock()
	if !registered {
		register()
	}
	due := c.mu.st.get(key).leaseDue
	c.mu.Unlock()
	if want := m0 + int64(later) + int64(lease); due != want {
		t.Fatalf("lease deadline %d ns after the renewal and the later registration, want %d (the registration's): moved back %v",
			due, want, time.Duration(want-due))
	}
}

// TestInstanceOnlyFromOwner: in keyed mode every node holds the cluster
// key, so a node can name another node's id in its requests. An instance
// is deregistered, or registered over, only from its owner's address: a
// node that names the owner's id from another address is refused EPERM
// and the instance stays as its owner registered it. Once its lease has
// run out, an instance may be registered again from another address (its
// node restarted on another port).
func TestInstanceOnlyFromOwner(t *testing.T) {
	keyed := func(c *rfc.Config) { c.Key = []byte("cluster-key-A-0123456789abcdef!!") }
	cfg := testCenterConfig(t.TempDir(), 0, netip.AddrPort{})
	cfg.SweepEvery = time.Hour // the lease runs out, but stays unswept
	ctr := startCenterOn(t, rfctest.Listen(t, 100, keyed), cfg)
	ctx := rfctest.Context(t, 10*time.Second)
	owner := newClient(t, rfctest.Listen(t, 7, keyed), ctr.Endpoint().Addr())
	other := newClient(t, rfctest.Listen(t, 7, keyed), ctr.Endpoint().Addr())
	const lease = 500 * time.Millisecond
	if _, err := owner.Register(ctx, "db", "10.0.0.1:5432", nil, lease); err != nil {
		t.Fatal(err)
	}
	key := sdk.ServiceKey("db", 7)
	addrOf := func() string {
		rec, ok := ctr.Entry(key)
		var r sdk.Record
		if !ok || sdk.ParseRecord(rec, &r) != wire.OK || r.Kind != sdk.KindService {
			return ""
		}
		return string(r.Addr)
	}
	if err := other.Deregister(ctx, "db"); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("deregistration from another address: %v, want EPERM", err)
	}
	if _, err := other.Register(ctx, "db", "10.6.6.6:5432", nil, lease); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("registration over the instance from another address: %v, want EPERM", err)
	}
	if a := addrOf(); a != "10.0.0.1:5432" {
		t.Fatalf("instance address %q, want the owner's 10.0.0.1:5432", a)
	}
	if n := ctr.Stats().NotOwner; n != 2 {
		t.Fatalf("NotOwner = %d, want 2", n)
	}
	if !rfctest.WaitFor(5*time.Second, func() bool {
		_, err := other.Register(ctx, "db", "10.0.0.2:5432", nil, lease)
		return err == nil
	}) {
		t.Fatal("instance past its lease not registered again from another address")
	}
	if err := owner.Deregister(ctx, "db"); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("deregistration by the former owner: %v, want EPERM", err)
	}
	if err := other.Deregister(ctx, "db"); err != nil {
		t.Fatalf("deregistration by the owner: %v", err)
	}
}
