package wire

import "testing"

// TestReview2ParseValueLeadingZero: a zero-padded integer is decimal, as
// the text form says (decimal, or 0x, 0o, 0b prefixed). strconv's base 0
// read "010" as the legacy octal 8 and refused "09", so a zero-padded id
// given to rfcctl -p was sent as another number.
func TestReview2ParseValueLeadingZero(t *testing.T) {
	cases := []struct {
		t    Type
		text string
		i    int64
		u    uint64
	}{
		{TypeInt64, "010", 10, 0},
		{TypeInt64, "-010", -10, 0},
		{TypeInt64, "+09", 9, 0},
		{TypeInt64, "0", 0, 0},
		{TypeInt64, "-0", 0, 0},
		{TypeInt64, "0x10", 16, 0},
		{TypeInt64, "0o10", 8, 0},
		{TypeInt64, "0b10", 2, 0},
		{TypeInt64, "-0x10", -16, 0},
		{TypeUint64, "00042", 0, 42},
		{TypeUint64, "0755", 0, 755},
		{TypeUint64, "0X1f", 0, 31},
		{TypeUint64, "18446744073709551615", 0, 1<<64 - 1},
	}
	for _, c := range cases {
		var p Params
		p.Reset(make([]byte, 64))
		if e := p.ParseValue(c.t, c.text); e != OK {
			t.Fatalf("ParseValue(%v, %q) = %v", c.t, c.text, e)
		}
		v := Walk(p.Segment())
		got, _ := v.Next()
		if got.Int64() != c.i || got.Uint64() != c.u {
			t.Fatalf("ParseValue(%v, %q) = %d %d, want %d %d", c.t, c.text, got.Int64(), got.Uint64(), c.i, c.u)
		}
	}
	for _, bad := range []string{"", "-", "0x", "08x", "0_8", "1e3", " 1"} {
		var p Params
		p.Reset(make([]byte, 64))
		if e := p.ParseValue(TypeInt64, bad); e != EINVAL || p.Count() != 0 {
			t.Fatalf("ParseValue(i64, %q) = %v, %d parameters", bad, e, p.Count())
		}
	}
}
