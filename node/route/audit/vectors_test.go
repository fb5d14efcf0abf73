package audit

import (
	"net/netip"
	"testing"

	"fastcall/wire"
)

// TestAuditLineVector: the known-answer vector of the audit file format
// (docs/ROUTE.md, "Audit trail"): one record formats to exactly this line
// (fields joined by tabs, newline ended), and the line parses back to it.
func TestAuditLineVector(t *testing.T) {
	rec := Record{Start: 1_700_000_000_123_456_789, End: 1_700_000_000_124_456_789,
		Client: netip.MustParseAddrPort("127.0.0.1:4000"), Dest: netip.MustParseAddrPort("127.0.0.1:5001"), Prev: netip.MustParseAddrPort("127.0.0.1:5000"),
		CallID: 1<<20 | 3, Node: 9, CallNo: 0x0410, Errno: wire.ECONFLICT, PrevErr: wire.ENODEAD, Tries: 2,
		Name: "ns-put", Cluster: "c1"}
	rec.NParams = uint16(copy(rec.Params[:], `str:"/c1/a" bytes:00`))
	const want = "2023-11-14T22:13:20.123456Z\t1700000000123456789\t1700000000124456789\t1000\t" +
		"127.0.0.1:4000\t9\t1048579\t0x0410\tns-put\tc1\t127.0.0.1:5001\tECONFLICT\t2\t" +
		"127.0.0.1:5000/ENODEAD\tstr:\"/c1/a\" bytes:00\n"
	line := string(AppendLine(nil, &rec))
	if line != want {
		t.Fatalf("audit line:\n got %q\nwant %q", line, want)
	}
	e, err := ParseLine(want)
	if err != nil || e.Start.UnixNano() != rec.Start || e.End.UnixNano() != rec.End || e.Client != rec.Client ||
		e.Node != rec.Node || e.CallID != rec.CallID || e.CallNo != rec.CallNo || e.Name != rec.Name ||
		e.Cluster != rec.Cluster || e.Dest != rec.Dest || e.Errno != rec.Errno || e.Tries != 2 ||
		e.Prev != "127.0.0.1:5000/ENODEAD" || e.Params != `str:"/c1/a" bytes:00` {
		t.Fatalf("parse: %+v %v", e, err)
	}
}
