package route

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// quiet is a logger for tests: failovers are expected and noisy.
var quiet = rfctest.Quiet

// newEndpoint opens a test endpoint for node (rfctest.Listen), with
// workers reader workers if positive.
func newEndpoint(t testing.TB, node uint32, workers int) *rfc.Endpoint {
	t.Helper()
	return rfctest.Listen(t, node, func(c *rfc.Config) {
		if workers > 0 {
			c.Workers = workers
		}
	})
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

// newTestMember registers a Member of cfg on a new endpoint for node
// (newEndpoint, no reader workers).
func newTestMember(t testing.TB, node uint32, cfg MemberConfig) (*Member, *rfc.Endpoint) {
	t.Helper()
	m := NewMember(cfg)
	ep := newEndpoint(t, node, 0)
	if err := m.Register(ep); err != nil {
		t.Fatalf("member Register: %v", err)
	}
	return m, ep
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
		tc.members[i], tc.meps[i] = newTestMember(t, uint32(10+i), MemberConfig{Active: i == 0})
	}
	mountC1(t, tc.table, tc.meps[0].Addr(), tc.meps[1].Addr())
	cfg := testRouterConfig(t)
	if mod != nil {
		mod(&cfg)
	}
	tc.auditDir = cfg.AuditDir
	tc.router, tc.rep = startRouter(t, tc.table, cfg)
	tc.client = newEndpoint(t, 100, 0)
	return tc
}

// startRouter starts a router over table on a new endpoint (node 1, 16
// workers); both are closed when the test ends.
func startRouter(t testing.TB, table MountSource, cfg Config) (*Router, *rfc.Endpoint) {
	t.Helper()
	rep := newEndpoint(t, 1, 16)
	r, err := New(rep, cfg, table)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r, rep
}

// mountC1 defines sub-cluster c1 = {a0 active, a1 standby} in table and
// mounts it at /c1.
func mountC1(t testing.TB, table *MemMounts, a0, a1 netip.AddrPort) {
	t.Helper()
	ctx := context.Background()
	if err := AddCluster(ctx, table, DefaultTablePrefix, "c1", []MemberSpec{{a0, RoleActive}, {a1, RoleStandby}}); err != nil {
		t.Fatalf("AddCluster: %v", err)
	}
	if err := AddMount(ctx, table, DefaultTablePrefix, "/c1", "c1"); err != nil {
		t.Fatalf("AddMount: %v", err)
	}
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

// putKV returns the parameters of an ns-put of "v" at /c1/k.
func putKV() *wire.Params {
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.String("/c1/k")
	ps.Bytes([]byte("v"))
	return &ps
}

// goPuts starts n puts of putKV from client through the router at addr,
// released when the test ends.
func goPuts(t *testing.T, ctx context.Context, client *rfc.Endpoint, addr netip.AddrPort, n int) []*rfc.Pending {
	t.Helper()
	ps := putKV()
	pend := make([]*rfc.Pending, 0, n)
	t.Cleanup(func() {
		for _, p := range pend {
			p.Release()
		}
	})
	for i := 0; i < n; i++ {
		p, err := client.Go(ctx, addr, CallNSPut, ps)
		if err != nil {
			t.Fatalf("Go %d: %v", i, err)
		}
		pend = append(pend, p)
	}
	return pend
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

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// silentMember listens at a loopback address that reads requests and
// never answers (a member listed but down), until the test ends. For
// each set-role request it reads it calls setRole (on its reading
// goroutine) with whether the datagram is a retransmission, and stops
// calling it once it returns false.
func silentMember(t testing.TB, setRole func(retrans bool) bool) netip.AddrPort {
	t.Helper()
	conn := rfctest.UDP(t)
	go func() {
		buf := make([]byte, wire.MaxDatagram)
		watch := true
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if watch && n >= wire.HeaderSize && binary.BigEndian.Uint16(buf[wire.OffCallNo:]) == CallSetRole {
				watch = setRole(buf[wire.OffFlags]&wire.FlagRetrans != 0)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}
