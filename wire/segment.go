package wire

import "unicode/utf8"

// parseSegment checks the parameters of seg that start at offset off, the
// way a receiver does (docs/PROTOCOL.md, "Parameter segment"): a known
// type, a length that fits the type and the segment, a bool of 0 or 1, a
// string of valid UTF-8. It stores a view of each in refs (offsets into
// seg) until refs is full, and returns the offset just past the last one.
// A segment that ends before refs is full is ReasonParamCount; with whole
// set, bytes left after the last one are ReasonTrailing. It reads
// nothing outside seg. This is the one parser of parameters: Decode checks
// a whole segment with one call, Walker one parameter per call.
func parseSegment(seg []byte, off int, refs []paramRef, whole bool) (int, Reason) {
	for i := range refs {
		if len(seg)-off < ParamHdrSize {
			return off, ReasonParamCount
		}
		t := Type(seg[off+OffParamType])
		n := int(be16(seg[off+OffParamLen:]))
		fs := fixedSize(t)
		if fs == 0 {
			return off, ReasonParamType
		}
		off += ParamHdrSize
		if (fs > 0 && n != fs) || n > len(seg)-off {
			return off, ReasonParamLen
		}
		v := seg[off : off+n]
		if t == TypeBool && v[0] > 1 {
			return off, ReasonBool
		}
		if t == TypeString && !utf8.Valid(v) {
			return off, ReasonUTF8
		}
		refs[i] = paramRef{off: uint16(off), n: uint16(n), typ: t}
		off += n
	}
	if whole && off != len(seg) {
		return off, ReasonTrailing
	}
	return off, ReasonNone
}

// Walker iterates the parameters of an encoded parameter segment, checking
// each as Decode does (parseSegment) and allowing at most MaxParams. It
// never reads outside the segment and never panics, on any input. The
// values it returns are views into the segment.
//
//	w := wire.Walk(seg)
//	for v, ok := w.Next(); ok; v, ok = w.Next() { ... }
//	if w.Reason() != wire.ReasonNone { malformed }
//
// The zero Walker walks an empty segment.
type Walker struct {
	seg    []byte
	off    int // offset of the next parameter header in seg
	count  int // parameters returned so far
	reason Reason
}

// Walk returns a walker at the first parameter of seg.
func Walk(seg []byte) Walker { return Walker{seg: seg} }

// Next checks the next parameter and returns it. It returns false at the
// end of the segment and at the first malformed parameter, after which
// Reason says which and Next keeps returning false.
func (w *Walker) Next() (Value, bool) {
	if w.reason != ReasonNone || w.off == len(w.seg) {
		return Value{}, false
	}
	if w.count == MaxParams {
		w.reason = ReasonParamCount
		return Value{}, false
	}
	var ref [1]paramRef
	end, r := parseSegment(w.seg, w.off, ref[:], false)
	if r != ReasonNone {
		w.reason = r
		return Value{}, false
	}
	// The value ends at end; its offset in ref may be cut to 16 bits in
	// a segment longer than a datagram, its length never is.
	w.off = end
	w.count++
	return Value{Type: ref[0].typ, Raw: w.seg[end-int(ref[0].n) : end]}, true
}

// Reason returns ReasonNone while every parameter walked so far is well
// formed, otherwise the reason the walk stopped.
func (w *Walker) Reason() Reason { return w.reason }

// Count returns the number of parameters returned so far.
func (w *Walker) Count() int { return w.count }

// CheckSegment walks the whole segment seg and returns its parameter
// count, or the reason it is malformed (the count is then 0).
func CheckSegment(seg []byte) (int, Reason) {
	w := Walk(seg)
	for _, ok := w.Next(); ok; _, ok = w.Next() {
	}
	if w.reason != ReasonNone {
		return 0, w.reason
	}
	return w.count, ReasonNone
}
