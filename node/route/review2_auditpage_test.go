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
