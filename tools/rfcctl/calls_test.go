package main

import (
	"encoding/json"
	"strings"
	"testing"
)

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
