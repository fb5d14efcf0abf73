package wire

import (
	"strconv"
	"unicode/utf8"
)

// AppendValue appends v as text, "TYPE:VALUE" with TYPE the type's short
// name (Type.String): i64 and u64 in decimal, f64 in Go's shortest 'g'
// form, bool as true or false, str quoted with Go escapes (so no tab or
// newline survives), bytes in lower-case hex. With max > 0 a str or bytes
// value longer than max bytes is cut to max bytes (a str at a character
// boundary) and followed by "..(N)", N its full length. A value of no
// known type appends "TYPE:?". rfcctl prints replies and the route audit
// trail records parameters in this form. It allocates only when b must
// grow.
func AppendValue(b []byte, v Value, max int) []byte {
	b = append(b, v.Type.String()...)
	b = append(b, ':')
	switch v.Type {
	case TypeInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case TypeUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case TypeFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case TypeBool:
		return strconv.AppendBool(b, v.Bool())
	case TypeString:
		s := v.Raw
		cut := max > 0 && len(s) > max
		if cut {
			n := max
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
	case TypeBytes:
		s := v.Raw
		cut := max > 0 && len(s) > max
		if cut {
			s = s[:max]
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

// appendCut appends the mark of a cut value: "..(N)", N its full length.
func appendCut(b []byte, n int) []byte {
	b = append(b, "..("...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ')')
}

// intBase returns the base strconv reads an integer's text in: 10 for a
// zero-padded decimal ("010" is ten, not the legacy octal of base 0),
// otherwise 0 (decimal, or the 0x, 0o, 0b prefixes).
func intBase(text string) int {
	if text != "" && (text[0] == '-' || text[0] == '+') {
		text = text[1:]
	}
	if len(text) > 1 && text[0] == '0' && text[1] >= '0' && text[1] <= '9' {
		return 10
	}
	return 0
}

// ParseValue parses text as a value of type t (see TypeByName) and appends
// it: i64 and u64 as Go integer literals (decimal, leading zeros
// included, or 0x, 0o, 0b prefixed), f64 as strconv.ParseFloat reads it, bool as
// strconv.ParseBool does (true, false, 1, 0, t, f), str as the text itself
// (valid UTF-8), bytes as the text's bytes. The str and bytes forms are
// not AppendValue's (which quotes and writes hex). Text that is not a
// value of t, or a type with no text form, is EINVAL and appends nothing;
// otherwise it returns Err.
func (p *Params) ParseValue(t Type, text string) Errno {
	switch t {
	case TypeInt64:
		v, err := strconv.ParseInt(text, intBase(text), 64)
		if err != nil {
			return EINVAL
		}
		p.Int64(v)
	case TypeUint64:
		v, err := strconv.ParseUint(text, intBase(text), 64)
		if err != nil {
			return EINVAL
		}
		p.Uint64(v)
	case TypeFloat64:
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return EINVAL
		}
		p.Float64(v)
	case TypeBool:
		v, err := strconv.ParseBool(text)
		if err != nil {
			return EINVAL
		}
		p.Bool(v)
	case TypeString:
		if !utf8.ValidString(text) {
			return EINVAL
		}
		p.String(text)
	case TypeBytes:
		if b := p.room(TypeBytes, len(text)); b != nil {
			copy(b, text)
		}
	default:
		return EINVAL
	}
	return p.err
}
