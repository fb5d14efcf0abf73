package route

import (
	"math"
	"testing"

	"fastcall/wire"
)

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
