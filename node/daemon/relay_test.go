package daemon

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"fastcall/node/dispatch"
	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// pairConfig is the configuration of node, center i of a pair on addrs
// (insecure, each center the other's peer and its one heartbeat member),
// its data in a directory of the test's. The caller sets its roles.
func pairConfig(t *testing.T, addrs []string, i int, node uint32) Config {
	c := Default()
	c.Insecure = true
	c.Addr = addrs[i]
	c.Node = node
	c.Center = CenterConfig{DataDir: filepath.Join(t.TempDir(), "center"), Peer: addrs[1-i], Index: i, Fsync: "never"}
	c.Heartbeat = HeartbeatConfig{Members: []string{addrs[1-i]}, Interval: Duration{50 * time.Millisecond}}
	return c
}

// TestNoRelayToPeerCenter: a center answers the calls between centers
// only from its peer's address. A dispatcher on the peer's node sends
// from that address wherever a remote dispatch-submit names, so it must
// not let a remote submit name the peer center: otherwise any sender of
// one datagram has its reg-touch (or reg-replicate) answered as the
// peer's.
func TestNoRelayToPeerCenter(t *testing.T) {
	addrs := rfctest.FreeAddrs(t, 2)
	start := func(i int, roles ...string) *Node {
		c := pairConfig(t, addrs, i, uint32(40+i))
		c.Roles = roles
		n, err := Start(c, rfctest.Quiet)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := start(0, RoleCenter)
	defer a.Stop()
	b := start(1, RoleCenter, RoleDisp)
	defer b.Stop()

	cli := rfctest.Listen(t, 0, nil)
	ctx := rfctest.Context(t, 20*time.Second)
	var ps wire.Params
	ps.Reset(make([]byte, 128))
	ps.Uint64(1)
	ps.String("127.0.0.1:9")
	if err := cli.Call(ctx, a.Ep.Addr(), registry.CallTouch, &ps, nil); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("reg-touch from a client: %v, want EPERM", err)
	}
	op := dispatch.Op{Resource: "touch", Kind: dispatch.KindRead, Call: dispatch.CallOf(registry.CallTouch, &ps),
		Targets: []dispatch.Target{{Addr: a.Ep.Addr()}}, Deadline: 5 * time.Second}
	id, err := dispatch.SubmitRemote(ctx, cli, b.Ep.Addr(), &op)
	if err != nil {
		if wire.AsErrno(err) != wire.EPERM {
			t.Fatalf("submit naming the peer center: %v, want EPERM", err)
		}
		return
	}
	for {
		st, err := dispatch.StatusRemote(ctx, cli, b.Ep.Addr(), id)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if st.State == dispatch.StateDone {
			if o := st.Outcomes[0]; o.Errno == wire.OK {
				t.Fatalf("reg-touch relayed by the peer's dispatcher answered OK (center %v NotPeer %d)",
					netip.MustParseAddrPort(addrs[0]), a.Center.Stats().NotPeer)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("operation not done")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestWildcardCenters: two centers listening on every address (0.0.0.0 or
// [::], dual-stack) with center.peer given as 127.0.0.1:PORT recognise
// each other: a datagram between them comes from 127.0.0.1 (unmapped
// from ::ffff:127.0.0.1 on a dual-stack socket), and a write at one is
// replicated to the other.
func TestWildcardCenters(t *testing.T) {
	for _, any := range []string{"0.0.0.0", "[::]"} {
		t.Run(any, func(t *testing.T) {
			addrs := rfctest.FreeAddrs(t, 2)
			var ns [2]*Node
			for i := range ns {
				c := pairConfig(t, addrs, i, uint32(50+i))
				c.Addr = any + ":" + strconv.Itoa(int(netip.MustParseAddrPort(addrs[i]).Port()))
				c.Roles = []string{RoleCenter}
				n, err := Start(c, rfctest.Quiet)
				if err != nil {
					t.Fatal(err)
				}
				defer n.Stop()
				ns[i] = n
			}
			cli := rfctest.Listen(t, 0, nil)
			ctx := rfctest.Context(t, 20*time.Second)
			for i := range ns {
				rc, err := client.NewClient(cli, client.DefaultClientConfig(netip.MustParseAddrPort(addrs[i])))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := rc.Put(ctx, "k"+strconv.Itoa(i), []byte("v"), 0); err != nil {
					t.Fatalf("put at center %d: %v", i, err)
				}
			}
			for i, n := range ns {
				if st := n.Center.Stats(); st.NotPeer != 0 || st.Replicated != 1 {
					t.Errorf("center %d: NotPeer %d, Replicated %d; want 0 and 1", i, st.NotPeer, st.Replicated)
				}
			}
		})
	}
}
