package wire

import "math"

// Type is a parameter type code. The table is append-only.
type Type uint8

const (
	TypeInvalid Type = 0
	TypeInt64   Type = 1 // 8 bytes, two's complement, big-endian
	TypeUint64  Type = 2 // 8 bytes, big-endian
	TypeFloat64 Type = 3 // 8 bytes, IEEE 754 binary64 bits, big-endian
	TypeBool    Type = 4 // 1 byte, 0 or 1
	TypeBytes   Type = 5 // 0..65535 bytes, opaque
	TypeString  Type = 6 // 0..65535 bytes, UTF-8
	typeLimit   Type = 7
)

var typeNames = Names{
	TypeInvalid: "invalid",
	TypeInt64:   "i64",
	TypeUint64:  "u64",
	TypeFloat64: "f64",
	TypeBool:    "bool",
	TypeBytes:   "bytes",
	TypeString:  "str",
}

// String returns the short name used by rfcctl and the audit trail
// ("i64", "u64", "f64", "bool", "bytes", "str").
func (t Type) String() string { return typeNames.String(uint64(t), "type?") }

// TypeByName is the inverse of String.
func TypeByName(s string) (Type, bool) {
	t, ok := typeNames.Value(s, uint64(TypeInt64))
	return Type(t), ok
}

// fixedSize returns the value size of a fixed-size type, -1 for a
// variable-size type and 0 for an unknown one.
func fixedSize(t Type) int {
	switch t {
	case TypeInt64, TypeUint64, TypeFloat64:
		return SizeFixed8
	case TypeBool:
		return SizeBool
	case TypeBytes, TypeString:
		return -1
	}
	return 0
}

// Value is a view of one decoded parameter. Its bytes point into the
// datagram and are valid only as long as the datagram buffer is.
type Value struct {
	Type Type
	Raw  []byte
}

// Int64 returns the value of an int64 parameter, 0 for other types.
func (v Value) Int64() int64 {
	if v.Type != TypeInt64 || len(v.Raw) != SizeFixed8 {
		return 0
	}
	return int64(be64(v.Raw))
}

// Uint64 returns the value of a uint64 parameter, 0 for other types.
func (v Value) Uint64() uint64 {
	if v.Type != TypeUint64 || len(v.Raw) != SizeFixed8 {
		return 0
	}
	return be64(v.Raw)
}

// Uint32 returns the value of a uint64 parameter that carries a 32-bit
// field (an incarnation, a node id), 0 for other types. ok is false for a
// value past 32 bits: a receiver refuses it (EINVAL) rather than read it
// cut to another valid value.
func (v Value) Uint32() (uint32, bool) {
	x := v.Uint64()
	return uint32(x), x <= math.MaxUint32
}

// Uint16 is Uint32 for a 16-bit field (a call number, an error number).
func (v Value) Uint16() (uint16, bool) {
	x := v.Uint64()
	return uint16(x), x <= math.MaxUint16
}

// Float64 returns the value of a float64 parameter, 0 for other types.
func (v Value) Float64() float64 {
	if v.Type != TypeFloat64 || len(v.Raw) != SizeFixed8 {
		return 0
	}
	return math.Float64frombits(be64(v.Raw))
}

// Bool returns the value of a bool parameter, false for other types.
func (v Value) Bool() bool {
	return v.Type == TypeBool && len(v.Raw) == SizeBool && v.Raw[0] == 1
}

// Bytes returns the value bytes of a bytes or string parameter without
// copying; nil for other types.
func (v Value) Bytes() []byte {
	if v.Type != TypeBytes && v.Type != TypeString {
		return nil
	}
	return v.Raw
}

// Str returns a string or bytes parameter as a new string (it allocates).
func (v Value) Str() string {
	if v.Type != TypeBytes && v.Type != TypeString {
		return ""
	}
	return string(v.Raw)
}

func be16(b []byte) uint16 {
	_ = b[1]
	return uint16(b[0])<<8 | uint16(b[1])
}

func be32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func put16(b []byte, v uint16) {
	_ = b[1]
	b[0] = byte(v >> 8)
	b[1] = byte(v)
}

func put32(b []byte, v uint32) {
	_ = b[3]
	b[0] = byte(v >> 24)
	b[1] = byte(v >> 16)
	b[2] = byte(v >> 8)
	b[3] = byte(v)
}

func put64(b []byte, v uint64) {
	_ = b[7]
	b[0] = byte(v >> 56)
	b[1] = byte(v >> 48)
	b[2] = byte(v >> 40)
	b[3] = byte(v >> 32)
	b[4] = byte(v >> 24)
	b[5] = byte(v >> 16)
	b[6] = byte(v >> 8)
	b[7] = byte(v)
}
