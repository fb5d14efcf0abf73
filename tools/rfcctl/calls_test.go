package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestCallsStatsPrintHostileNames: a node names its calls as it likes,
// and rfcctl calls and stats print those names as reg ls prints keys
// (printable: hex unless printable UTF-8), never raw. Before, a name
// holding a newline and tabs printed forged rows, and one holding ESC
// or BEL sent a control sequence to the operator's terminal.
func TestCallsStatsPrintHostileNames(t *testing.T) {
	srv := rfctest.Listen(t, 9, nil)
	names := []string{"h\t1\tforged\n0x0999\tforged", "h\x1b]0;title\x07", "h\u202eevil"}
	for i, n := range names {
		if err := srv.Register(uint16(0x1000+i), n, nil, rfc.Idempotent,
			func(*rfc.Request, *wire.Params) wire.Errno { return wire.OK }); err != nil {
			t.Fatal(err)
		}
	}
	// stats lists the calls served: serve each hostile one once.
	cli := rfctest.Listen(t, 10, nil)
	ctx := rfctest.Context(t, 10*time.Second)
	for i := range names {
		if err := cli.Call(ctx, srv.Addr(), uint16(0x1000+i), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	addr := srv.Addr().String()
	// The JSON output counts the entries each table has a line for; the
	// first stats makes the rows of the stats calls themselves.
	rfcctl(t, "stats", addr)
	var rows []callInfoRow
	out, code := rfcctl(t, "calls", "-json", addr)
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("calls -json: exit %d, output:\n%s", code, out)
	}
	var st struct {
		Engine []engineValue `json:"engine"`
		Calls  []callRow     `json:"calls"`
	}
	out, code = rfcctl(t, "stats", "-json", addr)
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("stats -json: exit %d, output:\n%s", code, out)
	}
	for _, c := range []struct {
		cmd   string
		lines int
	}{
		{"calls", 1 + len(rows)},                      // header, one line a call
		{"stats", len(st.Engine) + 2 + len(st.Calls)}, // engine lines, blank, header, one line a call
	} {
		out, code := rfcctl(t, c.cmd, addr)
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		bad := strings.ContainsAny(out, "\x1b\x07\u202e")
		if code != 0 || len(lines) != c.lines || bad || strings.Contains(out, "\nforged") {
			t.Errorf("rfcctl %s: exit %d, %d lines (want %d), control bytes %v:\n%q", c.cmd, code, len(lines), c.lines, bad, out)
		}
		for i := range names {
			if n := strings.Count(out, fmt.Sprintf("%#04x", 0x1000+i)); n != 1 {
				t.Errorf("rfcctl %s: call %#04x on %d lines, want 1:\n%q", c.cmd, 0x1000+i, n, out)
			}
		}
	}
}

// TestStatsPrintsHostileEngineNames: whoever answers in a node's place
// (checksum mode: anyone on the path) names the engine counters of
// rfcctl stats too; they are printed through printable like the call
// names. A peer played by hand answers CallStats with no call and
// CallEngineStats with a counter whose name holds a newline and ESC.
func TestStatsPrintsHostileEngineNames(t *testing.T) {
	conn := rfctest.UDP(t)
	codec, err := wire.NewCodec(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"rx", "tx\nforged\x1b[2J"}
	go func() {
		buf := make([]byte, wire.MaxDatagram)
		out := make([]byte, wire.DefaultMaxDatagram)
		var req wire.Packet
		var p wire.Params
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if codec.Decode(&req, buf[:n]) != wire.ReasonNone {
				continue
			}
			p.Reset(make([]byte, wire.DefaultMaxDatagram-wire.HeaderSize))
			switch req.CallNo {
			case rfc.CallStats:
				p.Uint64(0) // the last page, no call
			case rfc.CallEngineStats:
				for i, n := range names {
					p.Bytes([]byte(n))
					p.Uint64(uint64(i))
				}
			}
			h := wire.Header{Flags: wire.FlagReply, CallNo: req.CallNo, Src: 9, Dst: req.Src, CallID: req.CallID,
				Incarnation: 1, Stamp: uint32(time.Now().UnixMilli())}
			if m, e := codec.EncodeParams(out, &h, &p); e == wire.OK {
				conn.WriteToUDPAddrPort(out[:m], from)
			}
		}
	}()
	out, code := rfcctl(t, "stats", conn.LocalAddr().String())
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	want := len(names) + 2 // engine lines, blank, header
	if code != 0 || len(lines) != want || strings.ContainsAny(out, "\x1b") {
		t.Fatalf("rfcctl stats: exit %d, %d lines (want %d):\n%q", code, len(lines), want, out)
	}
}
