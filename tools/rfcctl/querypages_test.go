package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestCallsManyPages: rfcctl calls lists every call number of a node
// however many pages of CallCalls that takes (a page holds 16 rows), not
// the rows of a fixed number of pages.
func TestCallsManyPages(t *testing.T) {
	srv := rfctest.Listen(t, 9, nil)
	const first, n = 0x1000, 16000
	specs := make([]rfc.CallSpec, n)
	for i := range specs {
		specs[i] = rfc.CallSpec{No: uint16(first + i), Name: "c", Flags: rfc.Idempotent,
			H: func(*rfc.Request, *wire.Params) wire.Errno { return wire.OK }}
	}
	if err := srv.RegisterCalls(specs); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := cmdCalls([]string{"-t", "60s", "-json", srv.Addr().String()}, &out, &errOut)
	var rows []callInfoRow
	if code != 0 || json.Unmarshal(out.Bytes(), &rows) != nil {
		t.Fatalf("calls: exit %d, output:\n%.2000s%s", code, out.String(), errOut.String())
	}
	got := 0
	for _, r := range rows {
		if r.Call >= first && r.Call < first+n {
			got++
		}
	}
	if got != n {
		t.Fatalf("calls listed %d of the node's %d registered call numbers %#x..%#x (%d rows in all)", got, n, first, first+n-1, len(rows))
	}
}
