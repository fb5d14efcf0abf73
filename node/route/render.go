package route

import (
	"strconv"
	"unicode/utf8"

	"fastcall/node/route/audit"
	"fastcall/wire"
)

// auditParamsMax bounds the rendered parameters of one audit record; past
// it the rendering ends with " ...".
const auditParamsMax = audit.ParamsMax

// renderParams renders the parameters of pkt from index first on into
// dst (at most auditParamsMax bytes) and returns the length used. Each
// parameter is "type:value", separated by single spaces: i64 and u64 in
// decimal, f64 in Go's shortest 'g' form, bool as true/false, str quoted
// with Go escapes (so no tab or newline survives), bytes in hex. A str or
// bytes value longer than valueMax bytes is cut to valueMax bytes (a str
// at a character boundary) and followed by "..(N)", N its full length. It
// allocates nothing.
func renderParams(dst *[auditParamsMax]byte, pkt *wire.Packet, first, valueMax int) int {
	var tmp [8*maxValueMax + 48]byte
	b := dst[:0]
	for i := first; i < pkt.NParams(); i++ {
		item := renderValue(tmp[:0], pkt.Param(i), valueMax)
		sep := 0
		if len(b) > 0 {
			sep = 1
		}
		if len(b)+sep+len(item) > auditParamsMax-4 {
			b = append(b, " ..."...)
			break
		}
		if sep == 1 {
			b = append(b, ' ')
		}
		b = append(b, item...)
	}
	return len(b)
}

// renderValue appends one rendered parameter to b.
func renderValue(b []byte, v wire.Value, valueMax int) []byte {
	b = append(b, v.Type.String()...)
	b = append(b, ':')
	switch v.Type {
	case wire.TypeInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case wire.TypeUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case wire.TypeFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case wire.TypeBool:
		return strconv.AppendBool(b, v.Bool())
	case wire.TypeString:
		s := v.Raw
		cut := len(s) > valueMax
		if cut {
			n := valueMax
			for n > 0 && !utf8.RuneStart(s[n]) {
				n--
			}
			s = s[:n]
		}
		b = strconv.AppendQuote(b, string(s))
		if cut {
			b = appendCut(b, len(v.Raw))
		}
		return b
	case wire.TypeBytes:
		s := v.Raw
		cut := len(s) > valueMax
		if cut {
			s = s[:valueMax]
		}
		const hexDigits = "0123456789abcdef"
		for _, c := range s {
			b = append(b, hexDigits[c>>4], hexDigits[c&15])
		}
		if cut {
			b = appendCut(b, len(v.Raw))
		}
		return b
	}
	return append(b, '?')
}

func appendCut(b []byte, n int) []byte {
	b = append(b, "..("...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ')')
}
