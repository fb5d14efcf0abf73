package route

import (
	"testing"

	"fastcall/wire"
)

// TestAuditLineVector: the known-answer vector of the audit file format
// (docs/ROUTE.md, "Audit trail"): one record formats to exactly this line
// (fields joined by tabs, newline ended), and the line parses back to it.
func TestAuditLineVector(t *testing.T) {
	rec := auditRecord{start: 1_700_000_000_123_456_789, end: 1_700_000_000_124_456_789,
		client: mustAddr("127.0.0.1:4000"), dest: mustAddr("127.0.0.1:5001"), prev: mustAddr("127.0.0.1:5000"),
		callID: 1<<20 | 3, node: 9, callNo: 0x0410, errno: wire.ECONFLICT, prevErr: wire.ENODEAD, tries: 2,
		name: "ns-put", cluster: "c1"}
	rec.nparams = uint16(copy(rec.params[:], `str:"/c1/a" bytes:00`))
	const want = "2023-11-14T22:13:20.123456Z\t1700000000123456789\t1700000000124456789\t1000\t" +
		"127.0.0.1:4000\t9\t1048579\t0x0410\tns-put\tc1\t127.0.0.1:5001\tECONFLICT\t2\t" +
		"127.0.0.1:5000/ENODEAD\tstr:\"/c1/a\" bytes:00\n"
	line := string(appendLine(nil, &rec))
	if line != want {
		t.Fatalf("audit line:\n got %q\nwant %q", line, want)
	}
	e, err := ParseAuditLine(want)
	if err != nil || e.Start.UnixNano() != rec.start || e.End.UnixNano() != rec.end || e.Client != rec.client ||
		e.Node != rec.node || e.CallID != rec.callID || e.CallNo != rec.callNo || e.Name != rec.name ||
		e.Cluster != rec.cluster || e.Dest != rec.dest || e.Errno != rec.errno || e.Tries != 2 ||
		e.Prev != "127.0.0.1:5000/ENODEAD" || e.Params != `str:"/c1/a" bytes:00` {
		t.Fatalf("parse: %+v %v", e, err)
	}
}
