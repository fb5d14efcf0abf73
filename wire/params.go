package wire

import "math"

// Params builds a parameter segment into a caller-owned buffer. The zero
// value has no buffer; call Reset first. Appending past the buffer or past
// MaxParams sets a sticky error (EMSGSIZE or EINVAL) and leaves the
// segment as it was before the failed append.
//
// Params is not safe for concurrent use.
type Params struct {
	buf   []byte
	n     int
	count int
	err   Errno
}

// Reset starts an empty segment in buf; the segment may grow to len(buf).
func (p *Params) Reset(buf []byte) {
	p.buf = buf
	p.n = 0
	p.count = 0
	p.err = OK
}

// Segment returns the encoded parameters.
func (p *Params) Segment() []byte { return p.buf[:p.n] }

// Count returns the number of parameters appended.
func (p *Params) Count() int { return p.count }

// Len returns the segment length in bytes.
func (p *Params) Len() int { return p.n }

// Err returns the first error met while appending, OK if none.
func (p *Params) Err() Errno { return p.err }

// room reserves a parameter of type t and value size n and returns the
// value's slice, or nil after setting the sticky error.
func (p *Params) room(t Type, n int) []byte {
	if p.err != OK {
		return nil
	}
	if p.count >= MaxParams {
		p.err = EINVAL
		return nil
	}
	if n > math.MaxUint16 || p.n+ParamHdrSize+n > len(p.buf) {
		p.err = EMSGSIZE
		return nil
	}
	b := p.buf[p.n:]
	b[OffParamType] = byte(t)
	put16(b[OffParamLen:], uint16(n))
	p.n += ParamHdrSize + n
	p.count++
	return b[ParamHdrSize : ParamHdrSize+n]
}

// Int64 appends an int64 parameter.
func (p *Params) Int64(v int64) {
	if b := p.room(TypeInt64, SizeFixed8); b != nil {
		put64(b, uint64(v))
	}
}

// Uint64 appends a uint64 parameter.
func (p *Params) Uint64(v uint64) {
	if b := p.room(TypeUint64, SizeFixed8); b != nil {
		put64(b, v)
	}
}

// Float64 appends a float64 parameter.
func (p *Params) Float64(v float64) {
	if b := p.room(TypeFloat64, SizeFixed8); b != nil {
		put64(b, math.Float64bits(v))
	}
}

// Bool appends a bool parameter.
func (p *Params) Bool(v bool) {
	if b := p.room(TypeBool, SizeBool); b != nil {
		b[0] = 0
		if v {
			b[0] = 1
		}
	}
}

// Bytes appends a bytes parameter.
func (p *Params) Bytes(v []byte) {
	if b := p.room(TypeBytes, len(v)); b != nil {
		copy(b, v)
	}
}

// String appends a string parameter. The caller supplies valid UTF-8; the
// decoder rejects anything else.
func (p *Params) String(v string) {
	if b := p.room(TypeString, len(v)); b != nil {
		copy(b, v)
	}
}

// Value appends a decoded value unchanged (used to pass parameters on).
func (p *Params) Value(v Value) {
	if fs := fixedSize(v.Type); fs == 0 || (fs > 0 && len(v.Raw) != fs) {
		if p.err == OK {
			p.err = EINVAL
		}
		return
	}
	if b := p.room(v.Type, len(v.Raw)); b != nil {
		copy(b, v.Raw)
	}
}

// AppendSegment appends every parameter of an encoded, already validated
// segment with count parameters.
func (p *Params) AppendSegment(seg []byte, count int) {
	if p.err != OK {
		return
	}
	if p.count+count > MaxParams {
		p.err = EINVAL
		return
	}
	if p.n+len(seg) > len(p.buf) {
		p.err = EMSGSIZE
		return
	}
	p.n += copy(p.buf[p.n:], seg)
	p.count += count
}

// Cap returns the largest segment the builder can hold.
func (p *Params) Cap() int { return len(p.buf) }

// ReserveUint64 appends a uint64 placeholder with value 0 and returns its
// index, for SetUint64 to fill once the value is known (a page's next
// cursor, written first but known only after the entries). It returns -1
// after setting the sticky error.
func (p *Params) ReserveUint64() int {
	b := p.room(TypeUint64, SizeFixed8)
	if b == nil {
		return -1
	}
	put64(b, 0)
	return p.count - 1
}

// SetUint64 writes v into parameter i, a uint64 appended before (usually
// with ReserveUint64). Any other index or type sets the sticky error
// EINVAL; after an error it does nothing. It walks the segment to find the
// parameter.
func (p *Params) SetUint64(i int, v uint64) {
	if b := p.slot(i, TypeUint64); b != nil {
		put64(b, v)
	}
}

// slot returns the value bytes of parameter i if it has type t, otherwise
// nil after setting the sticky error.
func (p *Params) slot(i int, t Type) []byte {
	if p.err != OK {
		return nil
	}
	if i >= 0 && i < p.count {
		w := Walk(p.Segment())
		for j := 0; j <= i; j++ {
			v, ok := w.Next()
			if !ok {
				break
			}
			if j == i && v.Type == t {
				return v.Raw
			}
		}
	}
	p.err = EINVAL
	return nil
}
