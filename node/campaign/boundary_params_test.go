package campaign

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// callEntry is one call number a node serves, as its calls page lists it.
type callEntry struct {
	no     uint16
	name   string
	schema wire.Schema
}

// servedCalls reads every page of the node's calls list.
func servedCalls(t *testing.T, cli *rfc.Endpoint, addr netip.AddrPort) []callEntry {
	t.Helper()
	var out []callEntry
	for cursor := uint64(0); ; {
		var ps wire.Params
		ps.Reset(make([]byte, 1200))
		ps.Uint64(cursor)
		ps.Bytes(make([]byte, 600))
		var rep rfc.Reply
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cli.Call(ctx, addr, rfc.CallCalls, &ps, &rep)
		cancel()
		if err != nil {
			t.Fatalf("calls page %d of %v: %v", cursor, addr, err)
		}
		for i := 1; i+3 <= rep.NParams(); i += 4 {
			var s wire.Schema
			for _, b := range rep.Param(i + 2).Bytes() {
				s = append(s, wire.Type(b))
			}
			out = append(out, callEntry{uint16(rep.Param(i).Uint64()), rep.Param(i + 1).Str(), s})
		}
		if cursor = rep.Param(0).Uint64(); cursor == 0 {
			return out
		}
	}
}

// boundaryParams fills ps with values of schema drawn from the edges of
// each type: zero, one, the largest and the sign bit for numbers, NaN and
// infinities, empty, NUL-bearing, long and path-like strings, addresses
// that are wildcards or port 0, empty and all-ones bytes.
func boundaryParams(rng *rand.Rand, schema wire.Schema, ps *wire.Params) {
	u64s := []uint64{0, 1, 2, 255, 1 << 16, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, math.MaxUint64}
	strs := []string{"", "\x00", "a\x00b", "/", "//", "svc/", "kv/", strings.Repeat("a", 600), strings.Repeat("/x", 150),
		"../../etc", "127.0.0.1:1", "127.0.0.1:0", "0.0.0.0:0", "[::]:0", "255.255.255.255:65535", "x:y:z", "a#1", "read", "write"}
	for _, ty := range schema {
		switch ty {
		case wire.TypeUint64:
			ps.Uint64(u64s[rng.Intn(len(u64s))])
		case wire.TypeInt64:
			ps.Int64(int64(u64s[rng.Intn(len(u64s))]))
		case wire.TypeFloat64:
			ps.Float64([]float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64}[rng.Intn(6)])
		case wire.TypeBool:
			ps.Bool(rng.Intn(2) == 0)
		case wire.TypeString:
			ps.String(strs[rng.Intn(len(strs))])
		case wire.TypeBytes:
			b := make([]byte, []int{0, 1, 7, 8, 9, 16, 64, 300}[rng.Intn(8)])
			switch rng.Intn(3) {
			case 0:
				rng.Read(b)
			case 1:
				for i := range b {
					b[i] = 0xff
				}
			}
			ps.Bytes(b)
		}
	}
}

// TestBoundaryParams: every call number two rfcd nodes serve between
// them (every role: center, router, dispatcher, master on one; worker,
// agent, and an active member on the other) is called by an authenticated client with
// parameters of its schema taken from the edges of each type. No handler
// panics (no EFAULT but from the built-in fault call), and both nodes
// still answer afterwards.
func TestBoundaryParams(t *testing.T) {
	free := rfctest.FreeAddrs(t, 2)
	a, b := free[0], free[1]
	dir := t.TempDir()
	key := keyFile(t)
	na := startConfig(t, "a.json", fmt.Sprintf(`{"addr": %q, "node": 1, "key_file": %q, "log_level": "error", "roles": ["center", "router", "dispatcher", "master"],
		"center": {"data_dir": %q}, "registry": {"centers": [%q]}, "router": {"audit_dir": %q}, "heartbeat": {"members": [%q]}}`,
		a, key, filepath.Join(dir, "data"), a, filepath.Join(dir, "audit"), b))
	nb := startConfig(t, "b.json", fmt.Sprintf(`{"addr": %q, "node": 2, "key_file": %q, "log_level": "error", "roles": ["worker", "agent", "member"],
		"member": {"active": true}, "registry": {"centers": [%q], "shm_file": %q}, "heartbeat": {"members": [%q]}}`, b, key, a, filepath.Join(dir, "b.map"), a))
	cli := listenClient(t, testKey)
	rng := rand.New(rand.NewSource(1))
	per := scale(8)
	total := 0
	var summary []string
	for _, n := range []*node{na, nb} {
		calls := servedCalls(t, cli, n.addr)
		for _, c := range calls {
			errs := map[wire.Errno]int{}
			for i := 0; i < per; i++ {
				var ps wire.Params
				ps.Reset(make([]byte, 1300))
				boundaryParams(rng, c.schema, &ps)
				if ps.Err() != wire.OK {
					continue // long values drawn together past one datagram
				}
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				err := cli.Call(ctx, n.addr, c.no, &ps, nil)
				cancel()
				errs[wire.AsErrno(err)]++
				total++
			}
			if errs[wire.EFAULT] > 0 && c.no != builtin.CallFault {
				t.Errorf("%v %#04x %s %v: a handler panicked (%s)", n.addr, c.no, c.name, c.schema, errnoCounts(errs))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cli.Call(ctx, n.addr, rfc.CallPing, nil, nil)
		cancel()
		if err != nil {
			t.Fatalf("%v after the calls: %v", n.addr, err)
		}
		summary = append(summary, fmt.Sprintf("%d call numbers on %s", len(calls), map[*node]string{na: "one", nb: "the other"}[n]))
	}
	record(t, row{
		Fault:   "boundary parameter values",
		Params:  "two keyed rfcd nodes with every role between them; each served call number called with parameters of its schema from the edges of each type (0, max u64, sign bit, NaN, empty, NUL, long, wildcard addresses, all-ones bytes)",
		Load:    fmt.Sprintf("%d calls: %s, %d each", total, strings.Join(summary, " and "), per),
		Checked: "no EFAULT but from the built-in fault call; both nodes answer afterwards",
		Result:  "pass",
	})
}
