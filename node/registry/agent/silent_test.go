package agent

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/registry/center"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// TestAgentLogsSilentCenters: an agent whose center does not answer logs
// it once at warn level, however many times its watch tries again, and
// logs at info level when the center answers. Before, it logged nothing
// at info level: a node whose registry never answered looked healthy.
func TestAgentLogsSilentCenters(t *testing.T) {
	addr := netip.MustParseAddrPort(rfctest.FreeAddrs(t, 1)[0])
	var logs rfctest.LogBuffer
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
	if n := logs.Lines("level=WARN", "do not answer"); n != 1 {
		t.Fatalf("%d warnings that the centers do not answer after %d tries, want 1; log:\n%s",
			n, a.Watch().Stats().Resyncs, logs.String())
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
	if !rfctest.WaitFor(5*time.Second, func() bool { return logs.Lines("level=INFO", "answer again") == 1 }) {
		t.Fatalf("no single log line that the centers answer again; log:\n%s", logs.String())
	}
	if n := logs.Lines("level=WARN", "do not answer"); n != 1 {
		t.Fatalf("%d warnings that the centers do not answer, want 1", n)
	}
}
