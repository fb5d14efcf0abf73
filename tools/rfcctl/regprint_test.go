package main

import (
	"strings"
	"testing"
	"time"

	"fastcall/rfc/rfctest"
)

// TestRegPrintsHostileText: keys, service names and addresses are written
// by any client of the registry; rfcctl reg ls and reg services print
// them as shm dump does (printable: hex unless printable UTF-8), never
// raw. Before, a key holding a newline and tabs printed a forged row in
// the table, and one holding ESC sent a terminal control sequence to the
// operator's terminal.
func TestRegPrintsHostileText(t *testing.T) {
	addr, cli := startCenter(t)
	ctx := rfctest.Context(t, 10*time.Second)
	for _, k := range []string{"h/a\t1\tforged\nh/forged", "h/\x1b]0;title\x07"} {
		if _, err := cli.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Register(ctx, "hsvc\nforged", "1.2.3.4:5\x1b[2J", nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"reg", "-c", addr, "ls", "h/"}, {"reg", "-c", addr, "services", "hsvc"}} {
		out, code := rfcctl(t, args...)
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		want := 3 // header and the two keys
		if args[3] == "services" {
			want = 2 // header and the instance
		}
		if code != 0 || len(lines) != want || strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("rfcctl %q: exit %d, %d lines (want %d), control bytes %v:\n%q", args, code, len(lines), want,
				strings.ContainsAny(out, "\x1b\x07"), out)
		}
	}
}
