package center

import (
	"testing"

	"fastcall/node/registry/sdk"
)

// TestOpTable: an operation is found for its key only, keeps its first
// version, and is forgotten opMemoryMs after it was recorded or when
// maxOps newer ones were.
func TestOpTable(t *testing.T) {
	var tb opTable
	tb.init()
	a, b := sdk.OpID{Client: 1, Seq: 1}, sdk.OpID{Client: 1, Seq: 2}
	tb.add(a, "kv/x", 4, 0)
	tb.add(a, "kv/x", 6, 1)
	if v, ok := tb.find(a, "kv/x"); !ok || v != 4 {
		t.Fatalf("find: %d %v", v, ok)
	}
	if _, ok := tb.find(a, "kv/y"); ok {
		t.Fatal("found for another key")
	}
	if _, ok := tb.find(sdk.OpID{}, "kv/x"); ok {
		t.Fatal("the zero operation was found")
	}
	tb.add(b, "kv/x", 8, opMemoryMs+1)
	if _, ok := tb.find(a, "kv/x"); ok {
		t.Fatal("not forgotten after opMemoryMs")
	}
	for i := uint64(0); i < maxOps; i++ {
		tb.add(sdk.OpID{Client: 2, Seq: i + 1}, "kv/z", i, opMemoryMs+2)
	}
	if _, ok := tb.find(b, "kv/x"); ok || len(tb.m) != maxOps {
		t.Fatalf("past maxOps: found %v, %d held", ok, len(tb.m))
	}
}
