package campaign

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/wire"
)

// node is one rfcd process of the campaign.
type node struct {
	args []string
	addr netip.AddrPort
	cmd  *exec.Cmd
}

func keyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(p, testKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs rfcd with n.args; addr is taken from its first line.
func (n *node) start(t *testing.T, prefix ...string) {
	t.Helper()
	argv := append(append([]string{}, prefix...), filepath.Join(binDir, "rfcd"))
	argv = append(argv, n.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("rfcd %v printed nothing", n.args)
	}
	f := strings.Fields(sc.Text())
	ap, err := netip.ParseAddrPort(f[2])
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	n.addr, n.cmd = ap, cmd
}

func (n *node) kill() {
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
		n.cmd = nil
	}
}

// TestKillRestart: rfcd nodes are killed with SIGKILL and restarted on the
// same address while clients keep calling them.
func TestKillRestart(t *testing.T) {
	key := keyFile(t)
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = &node{args: []string{"-addr", "127.0.0.1:0", "-key", key, "-node", fmt.Sprint(i + 1), "-log-level", "error"}}
		nodes[i].start(t)
		// Restarts reuse the port.
		nodes[i].args[1] = nodes[i].addr.String()
	}
	defer func() {
		for _, n := range nodes {
			n.kill()
		}
	}()
	// Restarts keep each node's address; callers read this copy.
	addrs := make([]netip.AddrPort, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr
	}
	cli, err := rfc.Listen(quietConfig(testKey))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var stop atomic.Bool
	var mu sync.Mutex
	type seenKey struct {
		addr   netip.AddrPort
		incarn uint32
		v      uint64
	}
	seen := map[seenKey]bool{}
	errs := map[wire.Errno]int{}
	ok, dups := 0, 0
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var rep rfc.Reply
			for i := 0; !stop.Load(); i++ {
				dst := addrs[(g+i)%len(addrs)]
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				err := cli.Call(ctx, dst, builtin.CallIncr, nil, &rep)
				cancel()
				mu.Lock()
				if err != nil {
					errs[wire.AsErrno(err)]++
				} else {
					ok++
					k := seenKey{dst, rep.Incarnation, rep.Param(0).Uint64()}
					if seen[k] {
						dups++
					}
					seen[k] = true
				}
				mu.Unlock()
			}
		}(g)
	}
	rng := rand.New(rand.NewSource(3))
	kills := 0
	deadline := time.Now().Add(time.Duration(scale(3)) * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(150+rng.Intn(200)) * time.Millisecond)
		n := nodes[rng.Intn(len(nodes))]
		n.kill()
		kills++
		time.Sleep(50 * time.Millisecond)
		n.start(t)
	}
	stop.Store(true)
	wg.Wait()
	for e := range errs {
		if !e.Known() {
			t.Fatalf("unknown error number %v", e)
		}
	}
	if dups != 0 {
		t.Fatalf("%d calls ran twice within one incarnation", dups)
	}
	// Every node serves again after the storm.
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cli.Call(ctx, n.addr, rfc.CallPing, nil, nil)
		cancel()
		if err != nil {
			t.Fatalf("node %s after restarts: %v", n.addr, err)
		}
	}
	if ok == 0 || kills == 0 {
		t.Fatal("no load or no kills")
	}
	record(t, row{
		Fault:   "SIGKILL and restart of nodes",
		Params:  fmt.Sprintf("3 rfcd nodes, a random one killed every 150–350 ms and restarted on its port 50 ms later (%d kills)", kills),
		Load:    "16 callers, non-idempotent increments spread over the nodes, 300 ms deadlines",
		Checked: "no call ran twice (a restarted node refuses non-idempotent calls addressed to its previous incarnation with ESTALE); every failure an error number; every node serves after the storm; client never crashed",
		Result:  fmt.Sprintf("pass: %d ok, errors: %s", ok, errnoCounts(errs)),
	})
}
