package campaign

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"fastcall/node/daemon"
)

// openFDs counts the file descriptors process pid holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// metricsAddrOf returns the metrics address n's start line names
// ("... metrics MADDR").
func metricsAddrOf(t *testing.T, n *node) string {
	t.Helper()
	f := strings.Fields(n.line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "metrics" {
			return f[i+1]
		}
	}
	t.Fatalf("no metrics address in %q", n.line)
	return ""
}

// TestMetricsConnectionFlood: one client opens many keep-alive
// connections to rfcd's metrics server, scrapes once on each and keeps
// them open. The node holds at most daemon.MetricsMaxConns of them: every
// connection held is a file descriptor of the process that also holds
// the center's files, so without a bound one client could use up the
// node's descriptor limit (it held one per connection, idle for as long as
// the client liked).
func TestMetricsConnectionFlood(t *testing.T) {
	n := startNode(t, "-addr", "127.0.0.1:0", "-insecure", "-log-level", "error", "-metrics-addr", "127.0.0.1:0")
	pid := n.proc.Cmd.Process.Pid
	maddr := metricsAddrOf(t, n)
	base := openFDs(t, pid)

	conns := scale(300)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", maddr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
		fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	// A connection past the bound waits to be accepted: its request is
	// not answered now.
	answered := 0
	end := time.Now().Add(2 * time.Second)
	for _, c := range held {
		c.SetReadDeadline(end)
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
			answered++
		}
	}
	grown := openFDs(t, pid) - base
	if grown > daemon.MetricsMaxConns {
		t.Fatalf("%d idle keep-alive connections: rfcd holds %d more descriptors (bound %d), %d scrapes answered",
			conns, grown, daemon.MetricsMaxConns, answered)
	}
	// Once the client lets go, scrapes are served again.
	for _, c := range held {
		c.Close()
	}
	held = nil
	cli := &http.Client{Timeout: 30 * time.Second}
	resp, err := cli.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape after the flood: %v", err)
	}
	resp.Body.Close()
	record(t, row{
		Fault:   "metrics connection flood",
		Params:  fmt.Sprintf("rfcd with -metrics-addr; one client opens %d keep-alive connections, scrapes once on each and keeps them open", conns),
		Load:    fmt.Sprintf("%d connections", conns),
		Checked: fmt.Sprintf("the descriptors rfcd holds grow by at most daemon.MetricsMaxConns (%d); a scrape after the client closes them is answered", daemon.MetricsMaxConns),
		Result:  fmt.Sprintf("pass: %d more descriptors, %d scrapes answered during the flood", grown, answered),
	})
}
