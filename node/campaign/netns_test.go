package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/wire"
)

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestNamespaces runs the increment workload across three network
// namespaces joined by veth pairs on a bridge: two rfcd hosts and one
// client host.
func TestNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	id := os.Getpid() % 100000
	br := fmt.Sprintf("fcbr%d", id)
	if out, err := exec.Command("ip", "link", "add", br, "type", "bridge").CombinedOutput(); err != nil {
		t.Skipf("cannot create a bridge here: %s", out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	ipCmd(t, "link", "set", br, "up")
	ns := make([]string, 3)
	addr := make([]string, 3)
	for i := range ns {
		ns[i] = fmt.Sprintf("fcns%d-%d", id, i)
		addr[i] = fmt.Sprintf("10.213.%d.%d", id%200, i+1)
		host, peer := fmt.Sprintf("fcv%d-%d", id, i), fmt.Sprintf("fcp%d-%d", id, i)
		ipCmd(t, "netns", "add", ns[i])
		n := ns[i]
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		ipCmd(t, "link", "add", host, "type", "veth", "peer", "name", peer)
		ipCmd(t, "link", "set", peer, "netns", ns[i])
		ipCmd(t, "link", "set", host, "master", br, "up")
		ipCmd(t, "-n", ns[i], "addr", "add", addr[i]+"/24", "dev", peer)
		ipCmd(t, "-n", ns[i], "link", "set", peer, "up")
		ipCmd(t, "-n", ns[i], "link", "set", "lo", "up")
	}
	key := keyFile(t)
	var targets []string
	for i := 0; i < 2; i++ {
		n := &node{args: []string{"-addr", addr[i] + ":7000", "-key", key, "-node", fmt.Sprint(i + 1), "-log-level", "error"}}
		n.start(t, "ip", "netns", "exec", ns[i])
		defer n.kill()
		targets = append(targets, n.addr.String())
	}
	calls := scale(4000)
	child := proctest.Command("client", "FASTCALL_TARGETS="+strings.Join(targets, ","),
		fmt.Sprintf("FASTCALL_CALLS=%d", calls), "FASTCALL_BIND="+addr[2]+":0")
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns[2]}, child.Args...)...)
	cmd.Env = child.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("client in %s: %v\n%s", ns[2], err, errb.String())
	}
	var res clientResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("client output %q: %v", out.String(), err)
	}
	for name := range res.Errors {
		if _, ok := wire.ErrnoByName(name); !ok {
			t.Fatalf("unknown error %q", name)
		}
	}
	if res.Dups != 0 || res.OK == 0 {
		t.Fatalf("client result %+v", res)
	}
	record(t, row{
		Fault:   "several hosts",
		Params:  "3 network namespaces on a bridge via veth pairs; rfcd in two, the client in the third; authenticated",
		Load:    fmt.Sprintf("%d non-idempotent increments, 8 callers, over the veths", calls),
		Checked: "each success ran once; every failure an error number",
		Result:  fmt.Sprintf("pass: %d ok, errors %v, in %s", res.OK, res.Errors, time.Since(start).Round(time.Millisecond)),
	})
}
