//go:build linux

package rfc

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// TestLinkLocalCall calls across a real link with IPv6 link-local
// addresses: two network namespaces joined by a veth pair, fe80::a on one
// end and fe80::b on the other. The caller names the callee with its zone
// as the interface's name; the reply must match the call (its sender is
// named with the interface's index), and the callee must see the caller
// with its own zone. It needs root and ip(8), and is skipped without them.
func TestLinkLocalCall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command")
	}
	tag := strconv.Itoa(os.Getpid() % 100000)
	nsA, nsB := "fcllA"+tag, "fcllB"+tag
	ifA, ifB := "fcva"+tag, "fcvb"+tag
	const macA, macB = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
	run := func(args ...string) error {
		out, err := exec.Command(ipCmd, args...).CombinedOutput()
		if err != nil {
			t.Logf("ip %v: %v: %s", args, err, out)
		}
		return err
	}
	if run("netns", "add", nsA) != nil {
		t.Skip("cannot make a network namespace")
	}
	t.Cleanup(func() { run("netns", "del", nsA) })
	if run("netns", "add", nsB) != nil {
		t.Skip("cannot make a network namespace")
	}
	t.Cleanup(func() { run("netns", "del", nsB) })
	for _, args := range [][]string{
		{"link", "add", ifA, "address", macA, "netns", nsA, "type", "veth", "peer", "name", ifB, "address", macB, "netns", nsB},
		{"-n", nsA, "addr", "add", "fe80::a/64", "dev", ifA, "nodad"},
		{"-n", nsB, "addr", "add", "fe80::b/64", "dev", ifB, "nodad"},
		{"-n", nsA, "link", "set", ifA, "up"},
		{"-n", nsB, "link", "set", ifB, "up"},
		// Fixed neighbours: the first datagrams do not wait on
		// neighbour discovery of a link just up.
		{"-n", nsA, "neigh", "replace", "fe80::b", "lladdr", macB, "dev", ifA, "nud", "permanent"},
		{"-n", nsB, "neigh", "replace", "fe80::a", "lladdr", macA, "dev", ifB, "nud", "permanent"},
	} {
		if run(args...) != nil {
			t.Skip("cannot set up the veth pair")
		}
	}
	// inNS runs fn on a thread that is in namespace ns: a socket made
	// there stays in it.
	inNS := func(ns string, fn func()) {
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		defer self.Close()
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			t.Fatal(err)
		}
		defer func() {
			// A thread that cannot return stays locked and ends with
			// the goroutine.
			if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		fn()
	}
	listen := func(ns string) *Endpoint {
		var ep *Endpoint
		inNS(ns, func() {
			cfg := DefaultConfig()
			cfg.Addr = "[::]:0"
			if ep, err = Listen(cfg); err != nil {
				t.Fatal(err)
			}
		})
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	a, b := listen(nsA), listen(nsB)
	froms := make(chan netip.AddrPort, 8)
	if err := b.Register(0x7F01, "who", nil, 0, func(req *Request, reply *wire.Params) wire.Errno {
		select {
		case froms <- req.From:
		default:
		}
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	var idxA, idxB int
	inNS(nsA, func() { idxA = ifIndex(t, ifA) })
	inNS(nsB, func() { idxB = ifIndex(t, ifB) })
	dst := netip.MustParseAddrPort("[fe80::b%" + ifA + "]:" + strconv.Itoa(int(b.Addr().Port())))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var callErr error
	// The zone's name is an interface of namespace A only: the cache
	// of interface names (process-wide) is loaded there.
	inNS(nsA, func() {
		zones.mu.Lock()
		zones.mu.byName = nil
		zones.mu.Unlock()
		callErr = a.Call(ctx, dst, 0x7F01, nil, nil)
	})
	if callErr != nil {
		t.Fatalf("call to %v: %v", dst, callErr)
	}
	from := <-froms // the handler ran before its reply came back
	if want := netip.MustParseAddr("fe80::a").WithZone(strconv.Itoa(idxB)); from.Addr() != want || from.Port() != a.Addr().Port() {
		t.Errorf("callee saw the caller as %v, want %v port %d", from, want, a.Addr().Port())
	}
	peer := netip.AddrPortFrom(netip.MustParseAddr("fe80::b").WithZone(strconv.Itoa(idxA)), b.Addr().Port())
	if info, ok := a.Peer(peer); !ok || info.State != PeerAlive {
		t.Errorf("caller's peer entry for %v: %+v %v", peer, info, ok)
	}
	if n := len(a.Peers()); n != 1 {
		t.Errorf("caller tracks %d peers, want 1: %+v", n, a.Peers())
	}
}

func ifIndex(t *testing.T, name string) int {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}
