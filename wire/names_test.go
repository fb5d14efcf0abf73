package wire

import "testing"

func TestNames(t *testing.T) {
	n := Names{0: "", 1: "one", 2: "", 3: "three"}
	for _, tc := range []struct {
		v    uint64
		name string
		ok   bool
	}{{0, "", false}, {1, "one", true}, {2, "", false}, {3, "three", true}, {4, "", false}, {1 << 40, "", false}} {
		if name, ok := n.Name(tc.v); name != tc.name || ok != tc.ok {
			t.Errorf("Name(%d) = %q %v, want %q %v", tc.v, name, ok, tc.name, tc.ok)
		}
	}
	for _, tc := range []struct {
		s     string
		first uint64
		v     uint64
		ok    bool
	}{{"one", 0, 1, true}, {"three", 1, 3, true}, {"one", 2, 0, false}, {"", 0, 0, false}, {"two", 0, 0, false}} {
		if v, ok := n.Value(tc.s, tc.first); v != tc.v || ok != tc.ok {
			t.Errorf("Value(%q, %d) = %d %v, want %d %v", tc.s, tc.first, v, ok, tc.v, tc.ok)
		}
	}
}
