package route

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bufio"
	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
	"fastcall/wire"
	"testing/synctest"
)

// Test 4: audit queries return exactly the matching records across file
// rotations, page by page, compared with a slow reference filter.
func TestAuditQueryRotation(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) {
		c.AuditRotateBytes = minRotateBytes
		c.AuditKeep = 1000
		c.QueryScanBytes = 2048 // several pages even for few matches
	})
	a := tc.router.audit
	rng := rand.New(rand.NewSource(1))
	names := []string{"ns-put", "ns-get", "ns-list"}
	// The link-local client is held as the engine names a sender, its
	// zone the interface's index (1: lo).
	clients := []netip.AddrPort{mustAddr("127.0.0.1:4001"), mustAddr("127.0.0.1:4002"), mustAddr("127.0.0.2:4001"), mustAddr("[fe80::1%1]:4003")}
	base := time.Now().Add(-time.Hour).UnixNano()
	type ref struct {
		name   string
		client netip.AddrPort
		start  int64
		callID uint64
	}
	var all []ref
	const n = 600
	for i := 0; i < n; i++ {
		rec := audit.Record{Start: base + int64(i)*int64(time.Millisecond), Client: clients[rng.Intn(len(clients))],
			CallID: uint64(i + 1), CallNo: CallNSGet, Name: names[rng.Intn(len(names))], Cluster: "c1",
			Dest: tc.meps[0].Addr(), Tries: 1}
		rec.End = rec.Start + 1000
		rec.NParams = uint16(copy(rec.Params[:], fmt.Sprintf(`str:"/c1/%d"`, i)))
		a.Submit(&rec)
		all = append(all, ref{rec.Name, rec.Client, rec.Start, rec.CallID})
		if i%100 == 99 {
			tc.router.Flush(time.Second)
		}
	}
	if !tc.router.Flush(time.Second) {
		t.Fatal("flush")
	}
	seqs, _ := audit.Files(audit.OSFS{}, tc.auditDir)
	if len(seqs) < 5 {
		t.Fatalf("only %d files: no rotation", len(seqs))
	}
	for _, s := range seqs {
		fi, err := os.Stat(filepath.Join(tc.auditDir, audit.FileName(s)))
		if err != nil || fi.Mode().Perm() != audit.FileMode || fi.Size() > minRotateBytes {
			t.Fatalf("file %d: %v %v", s, fi.Mode(), err)
		}
	}
	at := func(i int) time.Time { return time.Unix(0, base+int64(i)*int64(time.Millisecond)) }
	cases := []struct {
		name string
		f    AuditFilter
	}{
		{"by name", AuditFilter{Call: "ns-put", Limit: MaxAuditLimit}},
		{"range", AuditFilter{Call: "ns-get", Since: at(100), Until: at(450), Limit: MaxAuditLimit}},
		{"client", AuditFilter{Call: "ns-list", Client: "127.0.0.1:4002", Limit: MaxAuditLimit}},
		{"client ip", AuditFilter{Call: "ns-list", Client: "127.0.0.1", Since: at(300), Limit: MaxAuditLimit}},
		// The IPv4-mapped form names the same client: records hold the
		// address a datagram came from, unmapped. Before, these
		// filters matched no record.
		{"client mapped", AuditFilter{Call: "ns-list", Client: "[::ffff:127.0.0.1]:4002", Limit: MaxAuditLimit}},
		{"client ip mapped", AuditFilter{Call: "ns-get", Client: "::ffff:127.0.0.2", Limit: MaxAuditLimit}},
		// A zone by interface name names the same client as its
		// index, as rfc.PeerAddr reads it. Before, it matched no
		// record.
		{"client zone name", AuditFilter{Call: "ns-get", Client: "[fe80::1%lo]:4003", Limit: MaxAuditLimit}},
		{"client ip zone name", AuditFilter{Call: "ns-put", Client: "fe80::1%lo", Limit: MaxAuditLimit}},
		{"limit", AuditFilter{Call: "ns-put", Limit: 7}},
		{"none", AuditFilter{Call: "nothing", Limit: 10}},
		// Bounds outside what Unix ns in an int64 holds (1970 to
		// 2262): before, a since before 1970 was refused EINVAL by
		// the router, one before 1678 wrapped and matched nothing, and
		// an until past 2262 wrapped the same way.
		{"since before 1970", AuditFilter{Call: "ns-get", Since: time.Unix(-5, 0), Limit: MaxAuditLimit}},
		{"since before 1678", AuditFilter{Call: "ns-get", Since: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), Limit: MaxAuditLimit}},
		{"until after 2262", AuditFilter{Call: "ns-get", Until: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Limit: MaxAuditLimit}},
		{"since after 2262", AuditFilter{Call: "ns-get", Since: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Limit: MaxAuditLimit}},
		{"until before 1970", AuditFilter{Call: "ns-get", Until: time.Unix(-5, 0), Limit: MaxAuditLimit}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []uint64
			var cl netip.Addr
			var port uint16
			if c.f.Client != "" {
				ap, err := netip.ParseAddrPort(c.f.Client)
				if err != nil {
					ap = netip.AddrPortFrom(netip.MustParseAddr(c.f.Client), 0)
				}
				cl, port = rfc.PeerAddr(ap).Addr(), ap.Port()
			}
			for _, r := range all {
				start := time.Unix(0, r.start)
				if r.name != c.f.Call || (!c.f.Since.IsZero() && start.Before(c.f.Since)) ||
					(!c.f.Until.IsZero() && !start.Before(c.f.Until)) ||
					(cl.IsValid() && (r.client.Addr() != cl || (port != 0 && r.client.Port() != port))) {
					continue
				}
				if len(want) < c.f.Limit {
					want = append(want, r.callID)
				}
			}
			if cl.IsValid() && len(want) == 0 {
				t.Fatal("no record of the client: the case checks nothing")
			}
			got := tc.audit(t, c.f)
			if len(got) != len(want) {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].CallID != want[i] || got[i].Name != c.f.Call {
					t.Fatalf("record %d: call id %d name %s, want %d", i, got[i].CallID, got[i].Name, want[i])
				}
			}
		})
	}
	// Limits past the cap are refused with a clear error number, by the
	// helper and by the router.
	if _, err := AuditQuery(context.Background(), tc.client, tc.rep.Addr(), AuditFilter{Call: "x", Limit: MaxAuditLimit + 1}); err != wire.EINVAL {
		t.Fatalf("limit past cap: %v", err)
	}
	if err := tc.rawAudit(MaxAuditLimit+1, 0, 0, nil); err != wire.EINVAL {
		t.Fatalf("router limit past cap: %v", err)
	}
}

// rawAudit sends the router an audit query for ns-put (all times, all
// clients) as AuditQuery would not: limit records from cursor (file, off)
// with reply room room, and returns the call's error.
func (tc *testCluster) rawAudit(limit, file, off uint64, room []byte) error {
	return tc.client.Call(context.Background(), tc.rep.Addr(), CallAudit, auditParams("ns-put", limit, file, off, room), nil)
}

// auditParams is a CallAudit request for call name (all times, all
// clients): limit records from cursor (file, off), padded with pad.
func auditParams(name string, limit, file, off uint64, pad []byte) *wire.Params {
	ps := new(wire.Params)
	ps.Reset(make([]byte, 1300))
	ps.String(name)
	ps.Uint64(0)
	ps.Uint64(0)
	ps.String("")
	ps.Uint64(limit)
	ps.Uint64(file)
	ps.Uint64(off)
	ps.Bytes(pad)
	return ps
}

// TestAuditLineTooBigForPage: a record whose line does not fit the
// client's reply room is refused with EMSGSIZE. The router used to answer
// a page with no line and the cursor the client sent, so AuditQuery asked
// for the same page again until its context ended (forever with none).
func TestAuditLineTooBigForPage(t *testing.T) {
	tc := newTestCluster(t, nil)
	rec := audit.Record{Start: time.Now().UnixNano(), Client: mustAddr("127.0.0.1:4001"), CallID: 1,
		CallNo: CallNSPut, Name: "ns-put", Cluster: "c1", Dest: tc.meps[0].Addr(), Tries: 1}
	rec.End = rec.Start + 1000
	rec.NParams = uint16(copy(rec.Params[:], `str:"`+strings.Repeat("a", 300)+`"`))
	tc.router.audit.Submit(&rec)
	if !tc.router.Flush(5 * time.Second) {
		t.Fatal("flush")
	}
	// A client whose datagrams are small pads its query for small replies.
	small := rfctest.Listen(t, 101, func(c *rfc.Config) { c.MaxDatagram = 400 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	es, err := AuditQuery(ctx, small, tc.rep.Addr(), AuditFilter{Call: "ns-put"})
	if err != wire.EMSGSIZE || len(es) != 0 {
		t.Fatalf("AuditQuery: %d records, %v; want EMSGSIZE", len(es), err)
	}
}

// TestAuditQueryNoProgress: AuditQuery gives up with EPROTO on a
// page that holds no record and sends it back to the cursor it asked
// from (a router that does not advance). It used to ask for the same page
// again until its context ended.
func TestAuditQueryNoProgress(t *testing.T) {
	stuck := rfctest.Listen(t, 2, nil)
	if err := stuck.Register(CallAudit, "route-audit", schemaAudit, rfc.Idempotent, func(req *rfc.Request, reply *wire.Params) wire.Errno {
		reply.Uint64(max(req.Param(5).Uint64(), 1)) // the cursor it was given
		reply.Uint64(req.Param(6).Uint64())
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	client := rfctest.Listen(t, 100, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := AuditQuery(ctx, client, stuck.Addr(), AuditFilter{Call: "ns-put"}); err != wire.EPROTO {
		t.Fatalf("AuditQuery of a router that does not advance: %v, want EPROTO", err)
	}
}

// TestCloseAuditsCallsInFlight: a routed call forwarded before Close and
// answered after it has its audit record. The member's reply was on its
// way when the router closed; the router still answered the client, but
// the writer had stopped, so the record stayed in the queue: an
// acknowledged call with no record, and none counted as dropped.
func TestCloseAuditsCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := audit.NewMemFS()
		sc := newSimCluster(t, func(c *Config) {
			c.AuditDir = "/audit"
			c.AuditFS = fs
		})
		sc.net.SetFaults(sc.meps[0].Addr(), sc.rep.Addr(), simnet.Faults{Delay: simnet.Dist{Base: 100 * time.Millisecond}})
		done := sc.goPut(t, "/c1/k")
		time.Sleep(50 * time.Millisecond)
		sc.router.Close()
		err := <-done
		records := 0
		seqs, ferr := audit.Files(fs, "/audit")
		if ferr != nil {
			t.Fatal(ferr)
		}
		for _, s := range seqs {
			f, ferr := fs.Open(filepath.Join("/audit", audit.FileName(s)))
			if ferr != nil {
				t.Fatal(ferr)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "\tns-put\t") {
					records++
				}
			}
			f.Close()
		}
		st := sc.router.AuditStats()
		t.Logf("put: %v; records %d, written %d, dropped %d", err, records, st.Written, st.Dropped)
		if err == nil && records != 1 && st.Dropped == 0 {
			t.Errorf("put answered OK after Close: %d audit records, none counted dropped", records)
		}
	})
}

// TestAuditCursorPastFile: an audit query whose cursor offset lies past
// the end of its file (or past what a file offset can be) is a bad
// request, EINVAL; the router answered EPROTO, the error number of a
// damaged audit trail, as the seek failed.
func TestAuditCursorPastFile(t *testing.T) {
	tc := newTestCluster(t, nil)
	if _, err := tc.put(t, "/c1/x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := tc.audit(t, AuditFilter{Call: "ns-put"}); len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	for _, off := range []uint64{1 << 40, math.MaxInt64, 1 << 63, math.MaxUint64} {
		// Cursor in the first audit file.
		if err := tc.rawAudit(10, 1, off, make([]byte, 300)); err != wire.EINVAL {
			t.Errorf("cursor (1, %d): %v, want EINVAL", off, err)
		}
	}
}

// TestAuditRecordBeforeReply: a client that has its answer finds its
// call's audit record in a query it sends at once. The router queues the
// record before it replies; replying first left a window in which the
// client's query, flushed and scanned, came before the record was queued.
func TestAuditRecordBeforeReply(t *testing.T) {
	tc := newTestCluster(t, nil)
	for i := 0; i < 300; i++ {
		t0 := time.Now()
		if _, err := tc.put(t, "/c1/order", []byte("v")); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if es := tc.audit(t, AuditFilter{Call: "ns-put", Since: t0}); len(es) != 1 {
			t.Fatalf("call %d: %d audit records right after its answer, want 1", i, len(es))
		}
	}
}

// countFS is a MemFS that counts the bytes its readers read.
type countFS struct {
	*audit.MemFS
	read atomic.Int64
}

func (c *countFS) Open(name string) (io.ReadSeekCloser, error) {
	f, err := c.MemFS.Open(name)
	if err != nil {
		return nil, err
	}
	return &countReader{f, &c.read}, nil
}

type countReader struct {
	io.ReadSeekCloser
	n *atomic.Int64
}

func (r *countReader) Read(p []byte) (int, error) {
	n, err := r.ReadSeekCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// TestAuditQueryScanBudget: a flood of small unauthenticated audit
// queries (a call name no record has, so that each page reads all it may)
// reads a bounded number of audit bytes, whatever the number of requests:
// the router's default configuration, a trail of several MiB, requests
// counted in bytes and the audit bytes read counted at the disk seam.
// Time is virtual and stands still while the requests are served. Each
// page used to read up to QueryScanBytes (4 MiB): every request of about
// 130 bytes cost the node 4 MiB of reads.
func TestAuditQueryScanBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSimNet(t)
		fsys := &countFS{MemFS: audit.NewMemFS()}
		cfg := sc.startRouter(t, func(c *Config) {
			*c = DefaultConfig()
			c.Logger = quiet
			c.AuditDir, c.AuditFS = "audit", fsys
		})
		a := sc.router.audit
		const trail = 6 << 20
		var rec audit.Record
		for i, size := 0, 0; size < trail; i++ {
			rec = audit.Record{Start: int64(i+1) * int64(time.Millisecond), Client: mustAddr("127.0.0.1:4001"),
				CallID: uint64(i + 1), CallNo: CallNSGet, Name: "ns-get", Cluster: "c1", Dest: simAddr(10), Tries: 1}
			rec.End = rec.Start + 1000
			rec.NParams = uint16(copy(rec.Params[:], fmt.Sprintf(`str:"/c1/%d"`, i)))
			a.Submit(&rec)
			size += len(audit.AppendLine(nil, &rec))
			if i%1000 == 999 && !a.Flush(time.Second) {
				t.Fatal("flush")
			}
		}
		if !a.Flush(time.Second) {
			t.Fatal("flush")
		}
		seqs, err := audit.Files(fsys, "audit")
		if err != nil || len(seqs) == 0 {
			t.Fatalf("files %v %v", seqs, err)
		}
		// From a cursor: no flush of the writer first.
		ps := auditParams("ns-nothing", MaxAuditLimit, seqs[0], 0, nil)
		req := rfctest.Request(t, mustAddr("127.0.0.1:4001"), 100, 1, CallAudit, ps)
		reqBytes := int64(req.Len)
		const n = 50
		var reply wire.Params
		buf := make([]byte, wire.DefaultMaxDatagram-wire.HeaderSize)
		flood := func() {
			t.Helper()
			fsys.read.Store(0)
			served := 0
			for range n {
				reply.Reset(buf)
				switch e := sc.router.serveAudit(req, &reply); e {
				case wire.OK:
					served++
				case wire.EBUSY:
				default:
					t.Fatalf("serveAudit: %v", e)
				}
			}
			read := fsys.read.Load()
			t.Logf("%d requests of %d bytes (%d served): %d audit bytes read, %d per request, %d per request byte",
				n, reqBytes, served, read, read/n, read/(n*reqBytes))
			if served == 0 {
				t.Fatal("no page served")
			}
			if bound := queryScanBurst * cfg.QueryScanBytes; read > bound {
				t.Fatalf("%d requests read %d audit bytes, more than the burst %d", n, read, bound)
			}
		}
		flood()
		// The allowance fills again with time.
		time.Sleep(time.Second)
		flood()
	})
}

// TestQueryBudgetLargeRate: the query allowance fills to its burst after
// an idle spell whatever QueryScanRate, which Config bounds only from
// below. The bytes the rate gave were converted to an int64 before they
// were capped: past the int64 range (a second at math.MaxInt64, or 1 TiB
// a second idle for 400 days) the conversion gave math.MinInt64 on amd64,
// the allowance went negative and every page was answered EBUSY.
func TestQueryBudgetLargeRate(t *testing.T) {
	for _, rate := range []int64{math.MaxInt64, 1 << 40} {
		c := DefaultConfig()
		c.QueryScanRate = rate
		var b queryBudget
		now := time.Unix(1000, 0)
		for b.take(now, &c) != 0 {
		}
		for _, idle := range []time.Duration{2 * time.Second, 400 * 24 * time.Hour} {
			now = now.Add(idle)
			if g := b.take(now, &c); g != c.QueryScanBytes {
				t.Fatalf("rate %d, after %v idle: a page granted %d bytes, want %d (allowance %d)",
					rate, idle, g, c.QueryScanBytes, b.avail)
			}
		}
	}
}

// TestAuditLongMemberZone: a member address whose IPv6 zone is longer
// than an interface name is refused in a cluster value, as the table's
// other malformed values are. An address keeps its zone as written, and
// the audit trail writes it in every record of a call that went there:
// with a zone of a thousand bytes (a cluster value the registry takes) a
// line passed the longest line of the trail the query knows
// (auditLineMax), and a page that ran out in such a line more than that
// far into it took it for none of the router's and resumed past it: the
// query skipped the record.
func TestAuditLongMemberZone(t *testing.T) {
	tc := newTestCluster(t, func(c *Config) { c.QueryScanBytes = audit.ScanMin })
	long := "active=[fe80::1%" + strings.Repeat("z", 1100) + "]:7000"
	if _, err := ParseMembers([]byte(long)); err != wire.EINVAL {
		t.Errorf("ParseMembers of a member with a 1100-byte zone: %v, want EINVAL", err)
	}
	// Written as a registry client can, past AddCluster's check.
	ctx := context.Background()
	if err := tc.table.Put(ctx, ClusterKey(DefaultTablePrefix, "c2"), []byte(long)); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, tc.table, DefaultTablePrefix, "/c2", "c2"); err != nil {
		t.Fatal(err)
	}
	const rounds = 8
	for i := range rounds {
		for _, p := range []string{"/c1/a", "/c1/b", "/c1/c", "/c1/d", "/c1/e", "/c2/f"} {
			tc.put(t, fmt.Sprintf("%s%d", p, i), []byte("v"))
		}
	}
	// A page holds five records of c1 and runs out more than
	// auditLineMax bytes into the record of c2 that follows.
	if es := tc.audit(t, AuditFilter{Call: "ns-put", Limit: MaxAuditLimit}); len(es) != 6*rounds {
		t.Fatalf("%d calls, the audit query returned %d records", 6*rounds, len(es))
	}
}
