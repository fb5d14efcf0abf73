package audit

import (
	"net/netip"
	"testing"
)

// TestRecordAfterShortWrite: a record written after a failed, partial
// write of the file is found by a query. The writer went on appending to
// the file that ended in the part of a line, so the next record's line
// was joined to it and no query could parse either.
func TestRecordAfterShortWrite(t *testing.T) {
	fsys := &faultFS{MemFS: NewMemFS()}
	a := startLog(t, Config{Dir: "/audit", RotateBytes: 64 << 20, Keep: 8, Buffer: 1024, FS: fsys})
	defer a.Close()
	submit := func(id uint64) {
		rec := Record{Name: "ns-put", CallID: id, CallNo: callNSPut, Client: netip.MustParseAddrPort("127.0.0.1:4000")}
		submitFlush(t, a, &rec)
	}
	submit(1)
	fsys.short.Store(true)
	submit(2)
	fsys.short.Store(false)
	submit(3)
	var ids []uint64
	q := Filter{Name: []byte("ns-put")}
	if _, _, err := a.Scan(&q, 0, 0, 100, 1<<20, func(line []byte) bool {
		e, err := ParseLine(string(line))
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		ids = append(ids, e.CallID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	t.Logf("records found %v; written %d, dropped %d, write errors %d", ids, st.Written, st.Dropped, st.WriteErrors)
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 3 {
		t.Errorf("records found %v, want [1 3]", ids)
	}
	if st.Written != 2 || st.Dropped != 1 {
		t.Errorf("written %d, dropped %d: want 2 and 1 (the record the failed write lost)", st.Written, st.Dropped)
	}
}
