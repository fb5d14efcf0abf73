package center

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/node/heartbeat"
	"fastcall/node/registry/agent"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// Multi-process tests re-exec the test binary (lock/proctest) in the role
// "center" or "sdk"; the REG_TEST_* variables carry the child's
// parameters.
const (
	addrEnv  = "REG_TEST_ADDR"
	peerEnv  = "REG_TEST_PEER"
	indexEnv = "REG_TEST_INDEX"
	dirEnv   = "REG_TEST_DIR"
	pathEnv  = "REG_TEST_PATH"
	nameEnv  = "REG_TEST_NAME"

	childHeartbeat = 50 * time.Millisecond
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func() int{"center": childCenter, "sdk": childSDK})
}

// childCenter runs a center with a heartbeat service toward its peer
// until it is killed or its parent is gone.
func childCenter() int {
	idx, _ := strconv.Atoi(os.Getenv(indexEnv))
	peer := netip.MustParseAddrPort(os.Getenv(peerEnv))
	cfg := rfc.DefaultConfig()
	cfg.NodeID = uint32(100 + idx)
	cfg.Addr = os.Getenv(addrEnv)
	cfg.Logger = rfctest.Quiet
	ep, err := rfc.Listen(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	hc := heartbeat.DefaultConfig().WithInterval(childHeartbeat)
	hc.Logger = rfctest.Quiet
	if _, err := heartbeat.Start(ep, hc, []netip.AddrPort{peer}); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat:", err)
		return 1
	}
	cc := testCenterConfig(os.Getenv(dirEnv), uint8(idx), peer)
	cc.ReplicateTimeout = 100 * time.Millisecond
	if _, err := StartCenter(ep, cc); err != nil {
		fmt.Fprintln(os.Stderr, "center:", err)
		return 1
	}
	fmt.Println("ready")
	<-proctest.ParentGone()
	return 0
}

// childSDK looks a service up in a map file with the SDK and prints one
// line per instance.
func childSDK() int {
	r, err := sdk.Open(os.Getenv(pathEnv))
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	defer r.Close()
	in, err := r.Lookup(os.Getenv(nameEnv))
	if err != nil {
		fmt.Println("lookup:", err)
		return 1
	}
	for _, x := range in {
		fmt.Printf("%s %d %s %s\n", x.Name, x.Node, x.Addr, x.Meta)
	}
	kv, err := r.Get("conf")
	if err != nil {
		fmt.Println("get:", err)
		return 1
	}
	fmt.Printf("kv %s %d\n", kv.Value, kv.Version)
	return 0
}

// spawnCenter starts center idx in a child process and waits for its
// "ready" line; the child is killed when the test ends.
func spawnCenter(t *testing.T, idx int, addr, peer, dir string) *proctest.Child {
	t.Helper()
	c := proctest.Start(t, "center", addrEnv+"="+addr, peerEnv+"="+peer, indexEnv+"="+strconv.Itoa(idx), dirEnv+"="+dir)
	if _, ok := c.Next("ready", 10*time.Second); !ok {
		t.Fatal("center child: no ready line")
	}
	return c
}

// TestKillCenterMidStream kills one center (SIGKILL) in the middle of a
// stream of writes: every write that returned success is on the survivor
// and, once the killed center is back, on it too.
func TestKillCenterMidStream(t *testing.T) {
	addrs := rfctest.FreeAddrs(t, 2)
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	a := spawnCenter(t, 0, addrs[0], addrs[1], dirs[0])
	spawnCenter(t, 1, addrs[1], addrs[0], dirs[1])
	centers := []netip.AddrPort{netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1])}
	ep := regtest.Endpoint(t, 7, "")
	cl := newClient(t, ep, centers...)

	const writes, killAt = 240, 80
	ok := map[string]string{}
	failed := 0
	for i := 0; i < writes; i++ {
		if i == killAt {
			a.Kill()
		}
		k, v := fmt.Sprintf("stream/%04d", i), fmt.Sprintf("v%d", i)
		if _, err := cl.Put(rfctest.Context(t, 3*time.Second), k, []byte(v), 0); err != nil {
			failed++
			continue
		}
		ok[k] = v
	}
	t.Logf("%d writes acknowledged, %d failed", len(ok), failed)
	if len(ok) < writes*9/10 {
		t.Fatalf("only %d of %d writes acknowledged", len(ok), writes)
	}
	// Presence is asserted, not how soon: each check polls up to 10 s.
	check := func(name string, c *client.Client) {
		t.Helper()
		var missing string
		good := rfctest.WaitFor(10*time.Second, func() bool {
			for k, v := range ok {
				e, err := c.Get(rfctest.Context(t, time.Second), k)
				if err != nil || string(e.Value) != v {
					missing = k
					return false
				}
			}
			return true
		})
		if !good {
			t.Fatalf("%s: acknowledged write %s missing", name, missing)
		}
	}
	check("survivor", newClient(t, regtest.Endpoint(t, 8, ""), centers[1]))
	spawnCenter(t, 0, addrs[0], addrs[1], dirs[0])
	check("restarted", newClient(t, regtest.Endpoint(t, 9, ""), centers[0]))
}

// TestSDKSeparateProcess has a child process, not linked with any node,
// read what an agent wrote.
func TestSDKSeparateProcess(t *testing.T) {
	p := startPair(t, nil)
	path := filepath.Join(t.TempDir(), "node.map")
	ag := startAgent(t, regtest.Endpoint(t, 42, ""), path, p.Addrs(), func(c *agent.AgentConfig) {
		c.Prefixes = []string{sdk.ServicePrefix, sdk.KVPrefix}
	})
	ctx := rfctest.Context(t, 5*time.Second)
	if err := ag.Register(ctx, "cache", "127.0.0.1:6379", []byte("shard=3"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ver, err := ag.Client().Put(ctx, "conf", []byte("on"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r := regtest.OpenMap(t, path)
	if !rfctest.WaitFor(2*time.Second, func() bool {
		_, e1 := r.Lookup("cache")
		_, e2 := r.Get("conf")
		return e1 == nil && e2 == nil
	}) {
		t.Fatal("agent did not write the map")
	}
	out, err := proctest.Command("sdk", pathEnv+"="+path, nameEnv+"=cache").Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	want := fmt.Sprintf("cache 42 127.0.0.1:6379 shard=3\nkv on %d\n", ver)
	if string(out) != want {
		t.Fatalf("child read %q, want %q", out, want)
	}
}
