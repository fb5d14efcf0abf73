package main

import (
	"bytes"
	"encoding/json"
	"strings"
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

// TestCallsCommand lists a running rfcd's call numbers, as text and JSON.
func TestCallsCommand(t *testing.T) {
	addr := startNode(t, "-node", "5", "-insecure")
	out, code := rfcctl(t, "calls", addr)
	if code != 0 {
		t.Fatalf("calls: exit %d\n%s", code, out)
	}
	for _, want := range []string{"0x0001  ping", "0x0004  calls", "0x0801  add           i64,i64     idempotent,inline", "0x0803  incr"} {
		if !strings.Contains(out, want) {
			t.Fatalf("calls output lacks %q:\n%s", want, out)
		}
	}
	out, code = rfcctl(t, "calls", "-json", addr)
	var rows []callInfoRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("calls -json: %d %s", code, out)
	}
	byName := map[string]callInfoRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	if r := byName["sleep"]; r.Call != 0x0802 || len(r.Schema) != 1 || r.Schema[0] != "i64" || len(r.Flags) != 0 {
		t.Fatalf("sleep row %+v", r)
	}
	if r := byName["ping"]; strings.Join(r.Flags, ",") != "idempotent,inline,priority" {
		t.Fatalf("ping row %+v", r)
	}
	if out, code := rfcctl(t, "calls"); code != 2 || !strings.Contains(out, "want ADDR") {
		t.Fatalf("calls without ADDR: %d %s", code, out)
	}
}
