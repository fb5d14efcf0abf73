package dispatch

import (
	"encoding/binary"
	"unicode/utf8"

	"fastcall/wire"
)

// segmentCount checks an encoded parameter segment the way a receiver
// will (docs/PROTOCOL.md, "Parameter segment") and returns its parameter
// count. A malformed segment is EINVAL; nothing past its end is read.
func segmentCount(seg []byte) (int, wire.Errno) {
	off, n := 0, 0
	for off < len(seg) {
		if n == wire.MaxParams || len(seg)-off < wire.ParamHdrSize {
			return 0, wire.EINVAL
		}
		t := wire.Type(seg[off+wire.OffParamType])
		l := int(binary.BigEndian.Uint16(seg[off+wire.OffParamLen:]))
		off += wire.ParamHdrSize
		if l > len(seg)-off {
			return 0, wire.EINVAL
		}
		v := seg[off : off+l]
		switch t {
		case wire.TypeInt64, wire.TypeUint64, wire.TypeFloat64:
			if l != wire.SizeFixed8 {
				return 0, wire.EINVAL
			}
		case wire.TypeBool:
			if l != wire.SizeBool || v[0] > 1 {
				return 0, wire.EINVAL
			}
		case wire.TypeBytes:
		case wire.TypeString:
			if !utf8.Valid(v) {
				return 0, wire.EINVAL
			}
		default:
			return 0, wire.EINVAL
		}
		off += l
		n++
	}
	return n, wire.OK
}
