package agent

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"fastcall/node/registry/center"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// logBuf is a log destination the test reads while the agent writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns how many lines hold all of words.
func (l *logBuf) count(words ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		all := line != ""
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			n++
		}
	}
	return n
}

// TestAgentLogsSilentCenters: an agent whose center does not answer logs
// it once at warn level, however many times its watch tries again, and
// logs at info level when the center answers. Before, it logged nothing
// at info level: a node whose registry never answered looked healthy.
func TestAgentLogsSilentCenters(t *testing.T) {
	addr := netip.MustParseAddrPort(rfctest.FreeAddrs(t, 1)[0])
	var logs logBuf
	cfg := DefaultAgentConfig(t.TempDir()+"/agent.map", addr)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.KeepaliveEvery = 20 * time.Millisecond
	cfg.AttemptTimeout = 50 * time.Millisecond
	a, err := StartAgent(regtest.Endpoint(t, 9, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !rfctest.WaitFor(10*time.Second, func() bool { return a.Watch().Stats().Resyncs >= 10 }) {
		t.Fatalf("the watch tried %d times", a.Watch().Stats().Resyncs)
	}
	if n := logs.count("level=WARN", "do not answer"); n != 1 {
		t.Fatalf("%d warnings that the centers do not answer after %d tries, want 1; log:\n%s",
			n, a.Watch().Stats().Resyncs, logs.b.String())
	}

	ep := rfctest.Listen(t, 100, func(c *rfc.Config) { c.Addr = addr.String() })
	c, err := center.StartCenter(ep, centertest.Config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !rfctest.WaitFor(10*time.Second, a.Watch().Synced) {
		t.Fatal("the agent did not sync once the center answered")
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return logs.count("level=INFO", "answer again") == 1 }) {
		t.Fatalf("no single log line that the centers answer again; log:\n%s", logs.b.String())
	}
	if n := logs.count("level=WARN", "do not answer"); n != 1 {
		t.Fatalf("%d warnings that the centers do not answer, want 1", n)
	}
}
