package builtin

import (
	"context"
	"math"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

func TestBuiltins(t *testing.T) {
	srv, err := rfc.Listen(rfc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctr, err := Register(srv)
	if err != nil {
		t.Fatal(err)
	}
	cli, _ := rfc.Listen(rfc.DefaultConfig())
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := func(f func(*wire.Params)) *wire.Params {
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		f(&ps)
		return &ps
	}
	var rep rfc.Reply
	cases := []struct {
		name string
		no   uint16
		ps   *wire.Params
		want wire.Errno
		chk  func() bool
	}{
		{"echo", CallEcho, p(func(ps *wire.Params) { ps.Bytes([]byte("x")) }), wire.OK, func() bool { return string(rep.Param(0).Bytes()) == "x" }},
		{"add", CallAdd, p(func(ps *wire.Params) { ps.Int64(2); ps.Int64(3) }), wire.OK, func() bool { return rep.Param(0).Int64() == 5 }},
		{"sleep", CallSleep, p(func(ps *wire.Params) { ps.Int64(1) }), wire.OK, nil},
		{"sleep-too-long", CallSleep, p(func(ps *wire.Params) { ps.Int64(int64(MaxSleep/time.Millisecond) + 1) }), wire.EINVAL, nil},
		// 18446744073710 ms times 10^6 ns wraps past 2^64 to under a
		// millisecond: refused like any sleep past MaxSleep.
		{"sleep-wraps", CallSleep, p(func(ps *wire.Params) { ps.Int64(18446744073710) }), wire.EINVAL, nil},
		{"sleep-max-i64", CallSleep, p(func(ps *wire.Params) { ps.Int64(math.MaxInt64) }), wire.EINVAL, nil},
		{"sleep-negative", CallSleep, p(func(ps *wire.Params) { ps.Int64(-1) }), wire.EINVAL, nil},
		{"incr", CallIncr, nil, wire.OK, func() bool { return rep.Param(0).Uint64() == 1 && ctr.Value() == 1 }},
		{"counter", CallCounter, nil, wire.OK, func() bool { return rep.Param(0).Uint64() == 1 }},
		{"fault", CallFault, nil, wire.EFAULT, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cli.Call(ctx, srv.Addr(), tc.no, tc.ps, &rep)
			if wire.AsErrno(err) != tc.want || (tc.chk != nil && !tc.chk()) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	for name, no := range Names {
		if srv.CallName(no) != name {
			t.Errorf("name table: %s -> %d, endpoint calls it %q", name, no, srv.CallName(no))
		}
	}
}
