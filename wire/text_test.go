package wire

import (
	"math"
	"strings"
	"testing"
)

func TestAppendValue(t *testing.T) {
	one := func(add func(*Params)) Value {
		var p Params
		p.Reset(make([]byte, 512))
		add(&p)
		v, _ := Walk(p.Segment()).nextValue()
		return v
	}
	long := strings.Repeat("é", 20) // 40 bytes
	cases := []struct {
		name string
		v    Value
		max  int
		want string
	}{
		{"i64", one(func(p *Params) { p.Int64(math.MinInt64) }), 0, "i64:-9223372036854775808"},
		{"u64", one(func(p *Params) { p.Uint64(math.MaxUint64) }), 0, "u64:18446744073709551615"},
		{"f64", one(func(p *Params) { p.Float64(2.5) }), 0, "f64:2.5"},
		{"f64-inf", one(func(p *Params) { p.Float64(math.Inf(-1)) }), 0, "f64:-Inf"},
		{"f64-nan", one(func(p *Params) { p.Float64(math.NaN()) }), 0, "f64:NaN"},
		{"bool", one(func(p *Params) { p.Bool(true) }), 0, "bool:true"},
		{"str", one(func(p *Params) { p.String("a\tb\"") }), 0, `str:"a\tb\""`},
		{"bytes", one(func(p *Params) { p.Bytes([]byte{0, 0xab, 'h'}) }), 0, "bytes:00ab68"},
		{"str-whole", one(func(p *Params) { p.String(long) }), 40, `str:"` + long + `"`},
		{"str-cut", one(func(p *Params) { p.String(long) }), 5, `str:"éé"..(40)`},
		{"bytes-cut", one(func(p *Params) { p.Bytes([]byte("hello")) }), 2, "bytes:6865..(5)"},
		{"invalid", Value{}, 0, "invalid:?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendValue(nil, c.v, c.max)); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	buf := make([]byte, 0, 1024)
	for _, c := range cases {
		if a := testing.AllocsPerRun(50, func() { AppendValue(buf[:0], c.v, 32) }); a != 0 {
			t.Fatalf("%s: AppendValue allocates %v", c.name, a)
		}
	}
}

func TestParseValue(t *testing.T) {
	cases := []struct {
		typ  string
		text string
		want string // AppendValue of the result; "" for EINVAL
	}{
		{"i64", "-42", "i64:-42"},
		{"i64", "0x10", "i64:16"},
		{"i64", "x", ""},
		{"i64", "9223372036854775808", ""},
		{"u64", "18446744073709551615", "u64:18446744073709551615"},
		{"u64", "-1", ""},
		{"f64", "1e3", "f64:1000"},
		{"f64", "inf", "f64:+Inf"},
		{"f64", "one", ""},
		{"bool", "true", "bool:true"},
		{"bool", "0", "bool:false"},
		{"bool", "yes", ""},
		{"str", "a b", `str:"a b"`},
		{"str", "\xff", ""},
		{"bytes", "hi", "bytes:6869"},
		{"bytes", "", "bytes:"},
		// A zero-padded integer is decimal, as the text form says
		// (decimal, or 0x, 0o, 0b prefixed): strconv's base 0 would read
		// "010" as the legacy octal 8 and refuse "09", and a zero-padded
		// id given to rfcctl -p would be sent as another number.
		{"i64", "010", "i64:10"},
		{"i64", "-010", "i64:-10"},
		{"i64", "+09", "i64:9"},
		{"i64", "0", "i64:0"},
		{"i64", "-0", "i64:0"},
		{"i64", "0o10", "i64:8"},
		{"i64", "0b10", "i64:2"},
		{"i64", "-0x10", "i64:-16"},
		{"u64", "00042", "u64:42"},
		{"u64", "0755", "u64:755"},
		{"u64", "0X1f", "u64:31"},
		{"i64", "", ""},
		{"i64", "-", ""},
		{"i64", "0x", ""},
		{"i64", "08x", ""},
		{"i64", "0_8", ""},
		{"i64", "1e3", ""},
		{"i64", " 1", ""},
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.text, func(t *testing.T) {
			typ, ok := TypeByName(c.typ)
			if !ok {
				t.Fatalf("TypeByName(%q)", c.typ)
			}
			var p Params
			p.Reset(make([]byte, 64))
			e := p.ParseValue(typ, c.text)
			if c.want == "" {
				if e != EINVAL || p.Len() != 0 || p.Err() != OK {
					t.Fatalf("got %v, %d bytes, err %v; want EINVAL, nothing appended", e, p.Len(), p.Err())
				}
				return
			}
			v, _ := Walk(p.Segment()).nextValue()
			if e != OK || p.Count() != 1 || string(AppendValue(nil, v, 0)) != c.want {
				t.Fatalf("got %v %s, want %s", e, AppendValue(nil, v, 0), c.want)
			}
		})
	}
	var p Params
	p.Reset(make([]byte, 4))
	if e := p.ParseValue(TypeString, "toolong"); e != EMSGSIZE {
		t.Fatalf("past the buffer: %v", e)
	}
	if e := p.ParseValue(TypeInvalid, "1"); e != EINVAL {
		t.Fatalf("invalid type: %v", e)
	}
}

// nextValue returns the first parameter of a walker (tests only).
func (w Walker) nextValue() (Value, bool) { return w.Next() }
