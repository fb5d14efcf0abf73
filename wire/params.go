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
