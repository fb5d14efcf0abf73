package route

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/wire"
)

// quiet is a logger for tests: failovers are expected and noisy.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEndpoint(t testing.TB, node uint32, workers int) *rfc.Endpoint {
	t.Helper()
	cfg := rfc.DefaultConfig()
	cfg.NodeID = node
	cfg.Logger = quiet
	if workers > 0 {
		cfg.Workers = workers
	}
	ep, err := rfc.Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// testCluster is a router, a sub-cluster "c1" of two members mounted at
// "/c1", and a client endpoint.
type testCluster struct {
	table    *MemMounts
	router   *Router
	rep      *rfc.Endpoint
	members  [2]*Member
	meps     [2]*rfc.Endpoint
	client   *rfc.Endpoint
	auditDir string
}

func testRouterConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.AuditDir = t.TempDir()
	cfg.Logger = quiet
	cfg.ForwardTimeout = 300 * time.Millisecond
	return cfg
}

func newTestCluster(t testing.TB, mod func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{table: NewMemMounts()}
	for i := range tc.members {
		tc.members[i] = NewMember(MemberConfig{Active: i == 0})
		tc.meps[i] = newEndpoint(t, uint32(10+i), 0)
		if err := tc.members[i].Register(tc.meps[i]); err != nil {
			t.Fatalf("member Register: %v", err)
		}
	}
	ctx := context.Background()
	if err := AddCluster(ctx, tc.table, DefaultTablePrefix, "c1", []MemberSpec{
		{tc.meps[0].Addr(), RoleActive}, {tc.meps[1].Addr(), RoleStandby}}); err != nil {
		t.Fatalf("AddCluster: %v", err)
	}
	if err := AddMount(ctx, tc.table, DefaultTablePrefix, "/c1", "c1"); err != nil {
		t.Fatalf("AddMount: %v", err)
	}
	tc.rep = newEndpoint(t, 1, 16)
	cfg := testRouterConfig(t)
	if mod != nil {
		mod(&cfg)
	}
	tc.auditDir = cfg.AuditDir
	r, err := New(tc.rep, cfg, tc.table)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	tc.router = r
	tc.client = newEndpoint(t, 100, 0)
	return tc
}

// put stores value at path through the router and returns the version.
func (tc *testCluster) put(t testing.TB, path string, value []byte) (uint64, error) {
	t.Helper()
	var ps wire.Params
	ps.Reset(make([]byte, 1300))
	ps.String(path)
	ps.Bytes(value)
	var rep rfc.Reply
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := tc.client.Call(ctx, tc.rep.Addr(), CallNSPut, &ps, &rep); err != nil {
		return 0, err
	}
	return rep.Param(0).Uint64(), nil
}

// get reads path through the router.
func (tc *testCluster) get(t testing.TB, path string) ([]byte, error) {
	t.Helper()
	var ps wire.Params
	ps.Reset(make([]byte, 1300))
	ps.String(path)
	var rep rfc.Reply
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := tc.client.Call(ctx, tc.rep.Addr(), CallNSGet, &ps, &rep); err != nil {
		return nil, err
	}
	return rep.Param(0).Bytes(), nil
}

// audit queries the router's audit trail over the call.
func (tc *testCluster) audit(t testing.TB, f AuditFilter) []audit.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := AuditQuery(ctx, tc.client, tc.rep.Addr(), f)
	if err != nil {
		t.Fatalf("AuditQuery: %v", err)
	}
	return es
}

// waitFor polls cond every few ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
