package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"fastcall/node/daemon"
)

// TestRfcdMetrics runs rfcd with -metrics-addr given as a bare port (0:
// any free one), checks that it listens on loopback, and scrapes it:
// every line must parse strictly.
func TestRfcdMetrics(t *testing.T) {
	f := startRfcd(t, "-addr", "127.0.0.1:0", "-insecure", "-log-level", "error", "-metrics-addr", "0")
	if len(f) != 9 || f[7] != "metrics" || !strings.HasPrefix(f[8], "127.0.0.1:") {
		t.Fatalf("rfcd said %q; want a loopback metrics address", strings.Join(f, " "))
	}
	if o, code := rfcctl(t, "call", f[2], "add", "-p", "i64:1", "-p", "i64:2"); code != 0 {
		t.Fatalf("call: %s", o)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + f[8] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %v %d", err, resp.StatusCode)
	}
	n, err := daemon.CheckExposition(body)
	if err != nil {
		t.Fatalf("exposition: %v\n%s", err, body)
	}
	// add is idempotent: a copy retransmitted on a loaded host runs
	// again, so the counter is at least 1.
	if !regexp.MustCompile(`(?m)^fastcall_calls_served_total\{call="0x0801",name="add"\} [1-9][0-9]*$`).Match(body) || n < 50 {
		t.Fatalf("%d samples; no add counter:\n%s", n, body)
	}
	if o, code := rfcctl(t, "calls", "-json", f[2]); code != 0 || !strings.Contains(o, `"name":"add"`) {
		t.Fatalf("calls: %d %s", code, o)
	}
}
