package route

import (
	"testing"
	"time"
)

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
