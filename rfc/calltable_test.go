package rfc

import (
	"testing"

	"fastcall/wire"
)

// TestRegisterCalls: a table is registered whole, or not at all: a row
// refused (a number registered already, a number twice in the table, a
// nil handler, a number in the engine's range) leaves none of the table's
// rows behind, so that a service whose start failed serves nothing with
// its half-built state and can be started again on the endpoint.
func TestRegisterCalls(t *testing.T) {
	ep := newTestEndpoint(t, nil)
	ok := func(*Request, *wire.Params) wire.Errno { return wire.OK }
	base := uint16(wire.CallUserBase + 0x70)
	if err := ep.RegisterCalls([]CallSpec{
		{No: base, Name: "first", H: ok},
		{No: base + 1, Name: "second", Schema: wire.Schema{wire.TypeString}, Flags: Idempotent, H: ok},
	}); err != nil {
		t.Fatal(err)
	}
	if ep.CallName(base) != "first" || ep.CallName(base+1) != "second" {
		t.Fatalf("names %q %q", ep.CallName(base), ep.CallName(base+1))
	}
	cases := []struct {
		name  string
		table []CallSpec
		want  wire.Errno
	}{
		{"registered", []CallSpec{{No: base + 2, Name: "third", H: ok}, {No: base, Name: "again", H: ok}, {No: base + 3, Name: "after", H: ok}}, wire.EEXIST},
		{"twice", []CallSpec{{No: base + 2, Name: "third", H: ok}, {No: base + 3, Name: "after", H: ok}, {No: base + 2, Name: "again", H: ok}}, wire.EEXIST},
		{"nil", []CallSpec{{No: base + 2, Name: "third", H: ok}, {No: base + 3, Name: "after"}}, wire.EINVAL},
		{"engine", []CallSpec{{No: base + 2, Name: "third", H: ok}, {No: CallPing + 1, Name: "low", H: ok}}, wire.EINVAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ep.RegisterCalls(tc.table); wire.AsErrno(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if ep.lookupCall(base+2) != nil || ep.lookupCall(base+3) != nil || ep.CallName(base+2) != "" {
				t.Fatalf("rows of a refused table registered: %q %q", ep.CallName(base+2), ep.CallName(base+3))
			}
			if ep.CallName(base) != "first" {
				t.Fatalf("a refused table renamed %d: %q", base, ep.CallName(base))
			}
		})
	}
	if err := ep.RegisterCalls([]CallSpec{{No: base + 2, Name: "third", H: ok}, {No: base + 3, Name: "after", H: ok}}); err != nil {
		t.Fatalf("the table again, mended: %v", err)
	}
}
