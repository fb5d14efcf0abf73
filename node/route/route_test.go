package route

import (
	"bytes"
	"context"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// longestMount is the reference of mountTable.lookup: it tries every
// prefix of path on a component boundary, from the longest, in a map of
// the mounts by prefix.
func longestMount(mounts map[string]mountRef, path []byte) (prefix, cluster string, ok bool) {
	if len(path) == 0 || path[0] != '/' {
		return "", "", false
	}
	p := path
	for {
		if m, found := mounts[string(p)]; found {
			return m.prefix, m.cluster, true
		}
		if len(p) <= 1 {
			return "", "", false
		}
		i := bytes.LastIndexByte(p, '/')
		if i <= 0 {
			p = p[:1]
		} else {
			p = p[:i]
		}
	}
}

func TestLongestMount(t *testing.T) {
	names := map[string]string{"/": "root", "/a": "a", "/a/b": "ab", "/a/bc/d": "abcd", "/x/y": "xy"}
	cases := []struct {
		path, prefix, cluster string
		ok                    bool
	}{
		{"/", "/", "root", true},
		{"/z", "/", "root", true},
		{"/a", "/a", "a", true},
		{"/a/", "/a", "a", true},
		{"/a/b", "/a/b", "ab", true},
		{"/a/b/c/d", "/a/b", "ab", true},
		{"/a/bc", "/a", "a", true},
		{"/a/bc/d", "/a/bc/d", "abcd", true},
		{"/a/bc/de", "/a", "a", true},
		{"/a//b", "/a", "a", true},
		{"//a", "/", "root", true},
		{"/x", "/", "root", true},
		{"/x/y/z", "/x/y", "xy", true},
		{"", "", "", false},
		{"a/b", "", "", false},
	}
	mt := newMountTable(names, nil)
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			p, cl, ok := mt.lookup([]byte(c.path))
			if p != c.prefix || cl != c.cluster || ok != c.ok {
				t.Fatalf("lookup(%q) = %q %q %v, want %q %q %v", c.path, p, cl, ok, c.prefix, c.cluster, c.ok)
			}
		})
	}
	// Past the deepest mount the walk stops, and finds what the
	// reference finds over the whole path.
	mounts := map[string]mountRef{}
	for p, c := range names {
		mounts[p] = mountRef{p, c}
	}
	long := strings.Repeat("/e", MaxPathLen)
	for _, c := range cases {
		for _, path := range []string{c.path, c.path + long, c.path + "e" + long} {
			p, cl, ok := longestMount(mounts, []byte(path))
			if lp, lcl, lok := mt.lookup([]byte(path)); lp != p || lcl != cl || lok != ok {
				t.Errorf("lookup(%.20q) = %q %q %v, want %q %q %v", path, lp, lcl, lok, p, cl, ok)
			}
		}
	}
	delete(names, "/")
	if _, _, ok := newMountTable(names, nil).lookup([]byte("/z")); ok {
		t.Fatal("match without a root mount")
	}
	path := []byte("/a/b/c/d")
	if n := testing.AllocsPerRun(100, func() { mt.lookup(path) }); n != 0 {
		t.Fatalf("lookup allocates %v", n)
	}
}

// TestLookupMatchesReference: random tables of mounts over a few
// components, and random paths over the same components and empty ones,
// resolve as the reference resolves them.
func TestLookupMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	comps := []string{"a", "b", "ab", "", "a.b"}
	randPath := func(max int) string {
		var sb strings.Builder
		for range rng.Intn(max + 1) {
			sb.WriteString("/" + comps[rng.Intn(len(comps))])
		}
		if sb.Len() == 0 {
			return "/"
		}
		return sb.String()
	}
	for round := 0; round < 500; round++ {
		names := map[string]string{}
		mounts := map[string]mountRef{}
		for i := range rng.Intn(12) {
			p := randPath(6)
			if !ValidPrefix(p) {
				continue
			}
			c := "c" + strconv.Itoa(i)
			names[p], mounts[p] = c, mountRef{p, c}
		}
		mt := newMountTable(names, nil)
		for range 50 {
			path := randPath(8)
			if rng.Intn(4) == 0 {
				path += "/"
			}
			p, cl, ok := longestMount(mounts, []byte(path))
			if lp, lcl, lok := mt.lookup([]byte(path)); lp != p || lcl != cl || lok != ok {
				t.Fatalf("table %v: lookup(%q) = %q %q %v, want %q %q %v", names, path, lp, lcl, lok, p, cl, ok)
			}
		}
	}
}

// TestLongPathRefused: a routed call whose path is past MaxPathLen is
// answered EINVAL (the router refuses it before the mount lookup, see
// BenchmarkLongPathRefused); one of exactly MaxPathLen bytes is forwarded.
func TestLongPathRefused(t *testing.T) {
	tc := newTestCluster(t, nil)
	at := "/c1" + strings.Repeat("/a", (MaxPathLen-3)/2)
	at += strings.Repeat("a", MaxPathLen-len(at))
	if _, err := tc.put(t, at, []byte("v")); err != nil {
		t.Fatalf("put of a %d-byte path: %v", len(at), err)
	}
	if _, err := tc.get(t, at+"a"); err != wire.EINVAL {
		t.Fatalf("get of a %d-byte path: %v, want EINVAL", len(at)+1, err)
	}
	if _, err := tc.get(t, at+"/a"); err != wire.EINVAL {
		t.Fatalf("get of a %d-byte path: %v, want EINVAL", len(at)+2, err)
	}
}

func TestParseMembers(t *testing.T) {
	cases := []struct {
		in string
		n  int
		ok bool
	}{
		{"active=127.0.0.1:1 standby=127.0.0.1:2", 2, true},
		{"standby=127.0.0.1:1", 1, true},
		{"active=[::1]:5 standby=127.0.0.1:2 standby=127.0.0.1:3", 3, true},
		{"", 0, false},
		{"active=127.0.0.1:1 active=127.0.0.1:2", 0, false},
		{"master=127.0.0.1:1", 0, false},
		{"active=127.0.0.1", 0, false},
		{"active=127.0.0.1:1 standby=127.0.0.1:1", 0, false},
		{"127.0.0.1:1", 0, false},
		// The IPv4-mapped form is the same member: listed beside it as a
		// standby, a router demoted the active member as a standby owed
		// a demotion, activated it again on the next call's ENOTACTIVE,
		// and so on for as long as the table held it.
		{"active=127.0.0.1:1 standby=[::ffff:127.0.0.1]:1", 0, false},
		{"standby=[::ffff:127.0.0.1]:1", 1, true},
		{"active=[fe80::1%eth0]:1", 1, true},
		{"active=[fe80::1%abcdefghijklmnop]:1", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			ms, err := ParseMembers([]byte(c.in))
			for _, m := range ms {
				if m.Addr.Addr().Is4In6() {
					t.Fatalf("ParseMembers(%q): member %v kept in the IPv4-mapped form", c.in, m.Addr)
				}
			}
			if (err == nil) != c.ok || len(ms) != c.n {
				t.Fatalf("ParseMembers(%q) = %v, %v", c.in, ms, err)
			}
			if c.ok {
				again, err := ParseMembers(EncodeMembers(ms))
				if err != nil || len(again) != len(ms) {
					t.Fatalf("round trip: %v %v", again, err)
				}
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	rfctest.ConfigCases(t, "route", DefaultConfig, (*Config).check, []rfctest.ConfigCase[Config]{
		{Name: "default", Mod: func(*Config) {}, Field: ""},
		{Name: "no audit", Mod: func(c *Config) { c.AuditDir = "" }, Field: ""},
		{Name: "prefix", Mod: func(c *Config) { c.TablePrefix = "" }, Field: "TablePrefix"},
		{Name: "timeout", Mod: func(c *Config) { c.ForwardTimeout = 0 }, Field: "ForwardTimeout"},
		{Name: "rotate", Mod: func(c *Config) { c.AuditRotateBytes = 100 }, Field: "AuditRotateBytes"},
		{Name: "keep", Mod: func(c *Config) { c.AuditKeep = 0 }, Field: "AuditKeep"},
		{Name: "buffer", Mod: func(c *Config) { c.AuditBuffer = 0 }, Field: "AuditBuffer"},
		{Name: "valuemax", Mod: func(c *Config) { c.AuditValueMax = 1000 }, Field: "AuditValueMax"},
		{Name: "scan page", Mod: func(c *Config) { c.QueryScanBytes = audit.ScanMin - 1 }, Field: "QueryScanBytes"},
		{Name: "scan page big", Mod: func(c *Config) { c.QueryScanBytes = maxScanBytes + 1 }, Field: "QueryScanBytes"},
		{Name: "scan rate", Mod: func(c *Config) { c.QueryScanRate = 0 }, Field: "QueryScanRate"},
		{Name: "call range", Mod: func(c *Config) { c.Calls = []RoutedCall{{No: 0x1000, Name: "x", Schema: wire.Schema{wire.TypeString}}} }, Field: "Calls"},
		{Name: "call path", Mod: func(c *Config) {
			c.Calls = []RoutedCall{{No: CallNSPut, Name: "x", Schema: wire.Schema{wire.TypeBytes}}}
		}, Field: "Calls"},
		{Name: "call twice", Mod: func(c *Config) { c.Calls = append(c.Calls, c.Calls[0]) }, Field: "Calls"},
	})
}

func TestRenderParams(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	cases := []struct {
		name string
		fill func(*wire.Params)
		want string
	}{
		{"scalars", func(p *wire.Params) { p.Int64(-5); p.Uint64(7); p.Bool(true); p.Float64(2.5) }, "i64:-5 u64:7 bool:true f64:2.5"},
		{"str", func(p *wire.Params) { p.String("a\tb\n") }, `str:"a\tb\n"`},
		{"bytes", func(p *wire.Params) { p.Bytes([]byte{0xde, 0xad}) }, "bytes:dead"},
		{"long bytes", func(p *wire.Params) { p.Bytes(bytes.Repeat([]byte{1}, 40)) }, "bytes:" + strings.Repeat("01", 32) + "..(40)"},
		{"long str", func(p *wire.Params) { p.String(long) }, `str:"` + strings.Repeat("é", 16) + `"..(80)`},
		{"many", func(p *wire.Params) {
			for i := 0; i < 20; i++ {
				p.String(strings.Repeat("x", 40))
			}
		}, ""},
	}
	codec, _ := wire.NewCodec(wire.DefaultMaxDatagram, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ps wire.Params
			ps.Reset(make([]byte, 1300))
			c.fill(&ps)
			buf := make([]byte, wire.DefaultMaxDatagram)
			n, e := codec.EncodeParams(buf, &wire.Header{Flags: wire.FlagRequest, CallNo: 0x1000}, &ps)
			if e != wire.OK {
				t.Fatal(e)
			}
			var pkt wire.Packet
			if r := codec.Decode(&pkt, buf[:n]); r != wire.ReasonNone {
				t.Fatal(r)
			}
			var out [auditParamsMax]byte
			got := string(out[:renderParams(&out, &pkt, 0, DefaultAuditValueMax)])
			if c.want == "" {
				if len(got) > auditParamsMax || !strings.HasSuffix(got, " ...") {
					t.Fatalf("not cut: %q", got)
				}
				return
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

// Test 1: longest-prefix resolution through the router, table changes
// picked up live.
func TestTableLive(t *testing.T) {
	tc := newTestCluster(t, nil)
	ctx := context.Background()
	if _, err := tc.put(t, "/c1/x", []byte("v")); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := tc.put(t, "/c2/x", []byte("v")); err != wire.ENOENT {
		t.Fatalf("unmounted put: %v, want ENOENT", err)
	}
	// A second sub-cluster, mounted deeper, takes over part of /c1.
	m3 := NewMember(MemberConfig{Active: true})
	ep3 := newEndpoint(t, 12, 0)
	if err := m3.Register(ep3); err != nil {
		t.Fatal(err)
	}
	if err := AddCluster(ctx, tc.table, DefaultTablePrefix, "c3", []MemberSpec{{ep3.Addr(), RoleActive}}); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, tc.table, DefaultTablePrefix, "/c1/deep", "c3"); err != nil {
		t.Fatal(err)
	}
	res, err := tc.router.Resolve("/c1/deep/er")
	if err != nil || res.Cluster != "c3" || res.Prefix != "/c1/deep" || res.Active != ep3.Addr() {
		t.Fatalf("Resolve: %+v %v", res, err)
	}
	if res, err := tc.router.Resolve("/c1/deeper"); err != nil || res.Cluster != "c1" {
		t.Fatalf("Resolve /c1/deeper: %+v %v", res, err)
	}
	if _, err := tc.put(t, "/c1/deep/er", []byte("v")); err != nil {
		t.Fatalf("put deep: %v", err)
	}
	if m3.Writes() != 1 || tc.members[0].Writes() != 1 {
		t.Fatalf("writes: c3 %d, c1 %d", m3.Writes(), tc.members[0].Writes())
	}
	// The rfcctl helpers see the same table.
	if r2, err := ResolvePath(ctx, tc.table, DefaultTablePrefix, "/c1/deep/er"); err != nil || r2.Cluster != "c3" {
		t.Fatalf("ResolvePath: %+v %v", r2, err)
	}
	tab, err := ListTable(ctx, tc.table, DefaultTablePrefix)
	if err != nil || len(tab.Mounts) != 2 || len(tab.Clusters) != 2 || len(tab.Bad) != 0 {
		t.Fatalf("ListTable: %+v %v", tab, err)
	}
	// Unmount: /c1/deep/er goes back to c1.
	if err := DelMount(ctx, tc.table, DefaultTablePrefix, "/c1/deep"); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.put(t, "/c1/deep/er", []byte("v")); err != nil {
		t.Fatalf("put after unmount: %v", err)
	}
	if m3.Writes() != 1 || tc.members[0].Writes() != 2 {
		t.Fatalf("after unmount writes: c3 %d, c1 %d", m3.Writes(), tc.members[0].Writes())
	}
	// A malformed entry is ignored, not fatal.
	_ = tc.table.Put(ctx, ClusterKey(DefaultTablePrefix, "c1"), []byte("bogus"))
	if _, err := tc.router.Resolve("/c1/x"); err != wire.ENOENT {
		t.Fatalf("resolve with malformed cluster: %v", err)
	}
	// Counters over the call.
	cs, err := RouteStats(ctx, tc.client, tc.rep.Addr())
	if err != nil || len(cs) != 2 || cs[0].Name != "c1" || cs[0].Calls != 2 || cs[1].Calls != 1 {
		t.Fatalf("RouteStats: %+v %v", cs, err)
	}
}

// Test 2: the active member dies; calls fail over to the standby, which
// the router promotes; the audit shows both.
func TestFailover(t *testing.T) {
	tc := newTestCluster(t, nil)
	a0, a1 := tc.meps[0].Addr(), tc.meps[1].Addr()
	if _, err := tc.put(t, "/c1/before", []byte("1")); err != nil {
		t.Fatalf("put before: %v", err)
	}
	tc.meps[0].Close()
	tc.rep.MarkDead(a0) // what the heartbeat service would do
	if _, err := tc.put(t, "/c1/after", []byte("2")); err != nil {
		t.Fatalf("put after failover: %v", err)
	}
	if !tc.members[1].Active() {
		t.Fatal("standby not promoted")
	}
	if res, _ := tc.router.Resolve("/c1/after"); res.Active != a1 {
		t.Fatalf("router believes %v active", res.Active)
	}
	if _, err := tc.get(t, "/c1/after"); err != nil {
		t.Fatalf("get after failover: %v", err)
	}
	es := tc.audit(t, AuditFilter{Call: "ns-put"})
	if len(es) != 2 {
		t.Fatalf("audit: %d records", len(es))
	}
	if es[0].Dest != a0 || es[0].Errno != wire.OK || es[0].Tries != 1 {
		t.Fatalf("first record: %+v", es[0])
	}
	if es[1].Dest != a1 || es[1].Errno != wire.OK || es[1].Tries != 2 || es[1].Prev != a0.String()+"/ENODEAD" {
		t.Fatalf("second record: %+v", es[1])
	}
	cs := tc.router.Counters()
	if len(cs) != 1 || cs[0].Failovers != 1 {
		t.Fatalf("counters: %+v", cs)
	}
}

// A member that answers ENOTACTIVE is skipped and the one that answers is
// remembered, without a promotion.
func TestNotActiveSwitch(t *testing.T) {
	tc := newTestCluster(t, nil)
	tc.members[0].SetActive(false)
	tc.members[1].SetActive(true)
	for i := 0; i < 2; i++ {
		if _, err := tc.put(t, "/c1/k", []byte("v")); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	es := tc.audit(t, AuditFilter{Call: "ns-put"})
	if len(es) != 2 || es[0].Tries != 2 || es[0].Prev != tc.meps[0].Addr().String()+"/ENOTACTIVE" || es[1].Tries != 1 {
		t.Fatalf("audit: %+v", es)
	}
	if c := tc.router.Counters(); c[0].Failovers != 0 {
		t.Fatalf("promotion counted: %+v", c)
	}
	// Both standby: the router activates the member it routes to.
	tc.members[1].SetActive(false)
	if _, err := tc.put(t, "/c1/k", []byte("v")); err != nil || !tc.members[1].Active() || tc.members[0].Active() {
		t.Fatalf("all standby: %v, active %v %v", err, tc.members[0].Active(), tc.members[1].Active())
	}
}

// A silent active member (no dead mark) fails over after the forward
// timeout.
func TestFailoverTimeout(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) { c.ForwardTimeout = 100 * time.Millisecond })
	tc.meps[0].Close()
	// ns-get is idempotent: sent on to the promoted member.
	if _, err := tc.get(t, "/c1/k"); err != wire.ENOENT {
		t.Fatalf("get: %v, want ENOENT from the promoted member", err)
	}
	es := tc.audit(t, AuditFilter{Call: "ns-get"})
	if len(es) != 1 || es[0].Dest != tc.meps[1].Addr() || !strings.HasSuffix(es[0].Prev, "/ETIMEDOUT") {
		t.Fatalf("audit: %+v", es)
	}
	if _, err := tc.put(t, "/c1/k", []byte("v")); err != nil {
		t.Fatalf("put after the failover: %v", err)
	}
}

// Test 3: a failed call's member receives the client's context.
func TestFailureNotice(t *testing.T) {
	tc := newTestCluster(t, nil)
	if _, err := tc.get(t, "/c1/missing"); err != wire.ENOENT {
		t.Fatalf("get: %v, want ENOENT", err)
	}
	m := tc.members[0]
	if !rfctest.WaitFor(2*time.Second, func() bool { return len(m.Notices()) == 1 }) {
		t.Fatalf("notices: %+v", m.Notices())
	}
	n := m.Notices()[0]
	if n.ClientAddr != tc.client.Addr().String() || n.ClientNode != 100 || n.CallNo != CallNSGet ||
		n.CallName != "ns-get" || n.Errno != wire.ENOENT || n.Path != "/c1/missing" || n.Router != tc.rep.Addr() {
		t.Fatalf("notice: %+v", n)
	}
	es := tc.audit(t, AuditFilter{Call: "ns-get"})
	if len(es) != 1 || es[0].CallID != n.CallID || es[0].Errno != wire.ENOENT {
		t.Fatalf("audit %+v vs notice %+v", es, n)
	}
	// The notices call returns the same.
	var ps wire.Params
	ps.Reset(make([]byte, 1300))
	ps.Uint64(0)
	ps.Bytes(make([]byte, 500))
	var rep rfc.Reply
	if err := tc.client.Call(context.Background(), tc.meps[0].Addr(), CallNotices, &ps, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Param(0).Uint64() != 1 || rep.Param(4).Uint64() != n.CallID {
		t.Fatalf("notices call: total %d", rep.Param(0).Uint64())
	}
	if tc.members[1].Notices() != nil && len(tc.members[1].Notices()) != 0 {
		t.Fatal("standby got a notice")
	}
}

// Test 5: a client retransmission is forwarded once.
func TestRetransmissionForwardedOnce(t *testing.T) {
	tc := newTestCluster(t, nil)
	conn := rfctest.UDP(t)
	codec, _ := wire.NewCodec(wire.DefaultMaxDatagram, nil)
	var ps wire.Params
	ps.Reset(make([]byte, 1300))
	ps.String("/c1/once")
	ps.Bytes([]byte("payload"))
	req := make([]byte, wire.DefaultMaxDatagram)
	h := wire.Header{Flags: wire.FlagRequest, CallNo: CallNSPut, Src: 77, CallID: 5<<20 | 1, Incarnation: 4242,
		PeerInc: tc.rep.Incarnation(), Budget: 2_000_000, Stamp: uint32(time.Now().UnixMilli())}
	n, e := codec.EncodeParams(req, &h, &ps)
	if e != wire.OK {
		t.Fatal(e)
	}
	dst := net.UDPAddrFromAddrPort(tc.rep.Addr())
	read := func() []byte {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 2048)
		m, _, err := conn.ReadFromUDP(b)
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		return b[:m]
	}
	if _, err := conn.WriteToUDP(req[:n], dst); err != nil {
		t.Fatal(err)
	}
	first := read()
	codec.Restamp(req[:n], h.Budget, h.Stamp, true) // the same request, marked as a retransmission
	if _, err := conn.WriteToUDP(req[:n], dst); err != nil {
		t.Fatal(err)
	}
	second := read()
	// The cached reply is restamped when it is resent (so that a long
	// call still takes it), so the two datagrams differ in stamp and
	// checksum; what they answer must be the same.
	var pkt, pkt2 wire.Packet
	if r := codec.Decode(&pkt, first); r != wire.ReasonNone || pkt.Errno != wire.OK || pkt.CallID != h.CallID {
		t.Fatalf("reply: %v %v %x", r, pkt.Errno, pkt.CallID)
	}
	if r := codec.Decode(&pkt2, second); r != wire.ReasonNone || pkt2.Errno != pkt.Errno || pkt2.CallID != pkt.CallID ||
		pkt2.Incarnation != pkt.Incarnation || !bytes.Equal(pkt2.Segment(), pkt.Segment()) {
		t.Fatalf("retransmission answered with a different reply: %v %v %x", r, pkt2.Errno, pkt2.CallID)
	}
	if w := tc.members[0].Writes(); w != 1 {
		t.Fatalf("member applied %d writes", w)
	}
	es := tc.audit(t, AuditFilter{Call: "ns-put"})
	if len(es) != 1 || es[0].CallID != h.CallID || es[0].Node != 77 {
		t.Fatalf("audit: %+v", es)
	}
}

// TestCallNameAuditable: a routed call whose name the audit line
// cannot hold as it is (a blank or control byte, more than 64 bytes, not
// UTF-8) is refused by New. Such a name used to be accepted and written
// altered (blanks as '_', cut at 64 bytes, possibly inside a character),
// so an audit query by the call's name never found its records.
func TestCallNameAuditable(t *testing.T) {
	for _, name := range []string{"ns put", "ns\tput", "ns\nput", "", strings.Repeat("n", 65), strings.Repeat("é", 33), "ns\xffput"} {
		cfg := testRouterConfig(t)
		cfg.Calls = NamespaceCalls()
		cfg.Calls[0].Name = name
		ep := newEndpoint(t, 1, 0)
		r, err := New(ep, cfg, NewMemMounts())
		if err == nil {
			r.Close()
		}
		if rfctest.ConfigError(t, err, "route", "Calls") == nil {
			t.Fatalf("call name %q accepted or refused otherwise", name)
		}
	}
	// The longest name the line holds is accepted.
	cfg := testRouterConfig(t)
	cfg.Calls = NamespaceCalls()
	cfg.Calls[0].Name = strings.Repeat("n", 64)
	r, err := New(newEndpoint(t, 1, 0), cfg, NewMemMounts())
	if err != nil {
		t.Fatalf("64-byte name: %v", err)
	}
	r.Close()
}

// TestNoticeWideParams: a route-notice whose client node (32 bits), call
// number or error number (16 bits), or time (Unix ns in 63 bits) is past
// its range is refused EINVAL and not held. Before, the member cut it
// (2^32 + 100 read as node 100, 2^16 + ENOENT as ENOENT) and held a
// notice of another call, and read a time past 2^63 as one before 1970.
func TestNoticeWideParams(t *testing.T) {
	tc := newTestCluster(t, nil)
	m := tc.members[0]
	now := uint64(time.Now().UnixNano())
	cases := []struct {
		name                  string
		node, callNo, eno, at uint64
	}{
		{"client node", 1<<32 + 100, uint64(CallNSGet), uint64(wire.ENOENT), now},
		{"call number", 100, 1<<16 + uint64(CallNSGet), uint64(wire.ENOENT), now},
		{"error number", 100, uint64(CallNSGet), 1<<16 + uint64(wire.ENOENT), now},
		{"time", 100, uint64(CallNSGet), uint64(wire.ENOENT), 1<<63 + now},
	}
	for _, c := range cases {
		var ps wire.Params
		ps.Reset(make([]byte, 512))
		ps.Uint64(c.node)
		ps.String(tc.client.Addr().String())
		ps.Uint64(7)
		ps.Uint64(c.callNo)
		ps.String("ns-get")
		ps.Uint64(c.eno)
		ps.String("/c1/missing")
		ps.Uint64(c.at)
		req := rfctest.Request(t, tc.rep.Addr(), tc.rep.NodeID(), tc.rep.Incarnation(), CallNotice, &ps)
		var rep wire.Params
		rep.Reset(make([]byte, 64))
		if e := m.serveNotice(req, &rep); e != wire.EINVAL {
			t.Errorf("%s past its range: %v, want EINVAL", c.name, e)
		}
		if ns := m.Notices(); len(ns) != 0 {
			t.Errorf("%s past its range: held %+v", c.name, ns)
		}
	}
}
