package wire

// Names is the name table of a small enumeration, indexed by value:
// Names[v] is the name of value v, and an empty string marks a value
// without a name. Tables are append-only, like the enumerations they name.
type Names []string

// Name returns the name of v, and false when v has none.
func (n Names) Name(v uint64) (string, bool) {
	if v < uint64(len(n)) && n[v] != "" {
		return n[v], true
	}
	return "", false
}

// String returns the name of v, or unknown followed by v in decimal when
// v has none (it allocates only then).
func (n Names) String(v uint64, unknown string) string {
	if s, ok := n.Name(v); ok {
		return s
	}
	return unknown + utoa(v)
}

// Value returns the value named s, looking at the values from first up
// (a value below first, such as an invalid zero, is never found), and
// false when none of them has that name.
func (n Names) Value(s string, first uint64) (uint64, bool) {
	for v := first; v < uint64(len(n)); v++ {
		if n[v] != "" && n[v] == s {
			return v, true
		}
	}
	return 0, false
}
