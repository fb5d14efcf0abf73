package route

import (
	"context"
	"strings"
	"testing"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestReview2AuditLineTooBigForPage: a record whose line does not fit the
// client's reply room is refused with EMSGSIZE. The router used to answer
// a page with no line and the cursor the client sent, so AuditQuery asked
// for the same page again until its context ended (forever with none).
func TestReview2AuditLineTooBigForPage(t *testing.T) {
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

// TestReview2AuditQueryNoProgress: AuditQuery gives up with EPROTO on a
// page that holds no record and sends it back to the cursor it asked
// from (a router that does not advance). It used to ask for the same page
// again until its context ended.
func TestReview2AuditQueryNoProgress(t *testing.T) {
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
