package rfc

import (
	"testing"

	"fastcall/wire"
)

// TestRegisterCalls: the rows of a table are registered in order, and the
// first row Register refuses stops the table with its error.
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
	err := ep.RegisterCalls([]CallSpec{
		{No: base + 2, Name: "third", H: ok},
		{No: base, Name: "again", H: ok},
		{No: base + 3, Name: "after", H: ok},
	})
	if wire.AsErrno(err) != wire.EEXIST {
		t.Fatalf("a table with a number registered twice: %v, want EEXIST", err)
	}
	if ep.CallName(base+2) != "third" || ep.CallName(base+3) != "" || ep.CallName(base) != "first" {
		t.Fatalf("after the refusal: %q %q %q", ep.CallName(base+2), ep.CallName(base+3), ep.CallName(base))
	}
}
