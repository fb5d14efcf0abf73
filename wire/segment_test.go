package wire

import (
	"bytes"
	"testing"
)

func TestWalker(t *testing.T) {
	var p Params
	p.Reset(make([]byte, 256))
	p.Int64(-1)
	p.String("héllo")
	p.Bool(true)
	p.Bytes([]byte{1, 2})
	p.Float64(2.5)
	p.Uint64(9)
	good := p.Segment()
	tooMany := func() []byte {
		var q Params
		q.Reset(make([]byte, 1024))
		for i := 0; i < MaxParams; i++ {
			q.Bool(false)
		}
		return append(q.Segment(), byte(TypeBool), 0, 1, 0)
	}()
	cases := []struct {
		name string
		seg  []byte
		n    int
		r    Reason
	}{
		{"empty", nil, 0, ReasonNone},
		{"good", good, 6, ReasonNone},
		{"truncated", good[:len(good)-1], 0, ReasonParamLen},
		{"short-header", []byte{1, 0}, 0, ReasonParamCount},
		{"type-zero", []byte{0, 0, 0}, 0, ReasonParamType},
		{"type-high", []byte{byte(typeLimit), 0, 0}, 0, ReasonParamType},
		{"i64-len", []byte{byte(TypeInt64), 0, 1, 0}, 0, ReasonParamLen},
		{"bool-len", []byte{byte(TypeBool), 0, 0}, 0, ReasonParamLen},
		{"bool-2", []byte{byte(TypeBool), 0, 1, 2}, 0, ReasonBool},
		{"utf8", []byte{byte(TypeString), 0, 1, 0xff}, 0, ReasonUTF8},
		{"bytes-past-end", []byte{byte(TypeBytes), 0, 2, 0}, 0, ReasonParamLen},
		{"max", tooMany[:len(tooMany)-4], MaxParams, ReasonNone},
		{"too-many", tooMany, 0, ReasonParamCount},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, r := CheckSegment(c.seg)
			if n != c.n || r != c.r {
				t.Fatalf("CheckSegment = %d %v, want %d %v", n, r, c.n, c.r)
			}
			w := Walk(c.seg)
			for _, ok := w.Next(); ok; _, ok = w.Next() {
			}
			if _, ok := w.Next(); ok || w.Reason() != c.r {
				t.Fatalf("walker after its end: %v %v", ok, w.Reason())
			}
		})
	}
	// The values are the ones appended, as views into the segment.
	w := Walk(good)
	var got []Value
	for v, ok := w.Next(); ok; v, ok = w.Next() {
		got = append(got, v)
	}
	if len(got) != 6 || got[0].Int64() != -1 || got[1].Str() != "héllo" || !got[2].Bool() ||
		!bytes.Equal(got[3].Bytes(), []byte{1, 2}) || got[4].Float64() != 2.5 || got[5].Uint64() != 9 {
		t.Fatalf("values %v", got)
	}
	if &got[5].Raw[0] != &good[len(good)-1-7] {
		t.Fatal("value is not a view into the segment")
	}
	if a := testing.AllocsPerRun(100, func() { CheckSegment(good) }); a != 0 {
		t.Fatalf("CheckSegment allocates %v", a)
	}
}

// TestReserveUint64: a reserved and later filled parameter encodes the same
// bytes as the value appended in place; a wrong index or type is EINVAL.
func TestReserveUint64(t *testing.T) {
	var want, got Params
	want.Reset(make([]byte, 64))
	got.Reset(make([]byte, 64))
	want.String("a")
	want.Uint64(7)
	want.Bool(true)
	want.Uint64(1 << 63)
	got.String("a")
	i := got.ReserveUint64()
	got.Bool(true)
	j := got.ReserveUint64()
	if i != 1 || j != 3 {
		t.Fatalf("indexes %d %d", i, j)
	}
	got.SetUint64(j, 1<<63)
	got.SetUint64(i, 7)
	if got.Err() != OK || !bytes.Equal(got.Segment(), want.Segment()) {
		t.Fatalf("err %v segment %x want %x", got.Err(), got.Segment(), want.Segment())
	}
	if a := testing.AllocsPerRun(100, func() { got.SetUint64(j, 5) }); a != 0 {
		t.Fatalf("SetUint64 allocates %v", a)
	}
	for _, idx := range []int{-1, 0, 2, 4} {
		var q Params
		q.Reset(make([]byte, 64))
		q.String("a")
		q.ReserveUint64()
		q.Bool(false)
		q.SetUint64(idx, 1)
		if q.Err() != EINVAL {
			t.Fatalf("SetUint64(%d): err %v, want EINVAL", idx, q.Err())
		}
	}
	var full Params
	full.Reset(make([]byte, ParamHdrSize+SizeFixed8-1))
	if i := full.ReserveUint64(); i != -1 || full.Err() != EMSGSIZE {
		t.Fatalf("reserve past the buffer: %d %v", i, full.Err())
	}
	full.SetUint64(0, 1) // after an error: nothing, and the error stays
	if full.Err() != EMSGSIZE || full.Len() != 0 {
		t.Fatalf("after error: %v %d", full.Err(), full.Len())
	}
}
