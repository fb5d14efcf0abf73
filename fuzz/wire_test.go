package fuzz

import (
	"bytes"
	"encoding/hex"
	"math"
	"os"
	"strings"
	"testing"

	gofuzz "github.com/google/gofuzz"

	"fastcall/wire"
)

var fuzzKey = []byte("fastcall-vector-key-0123456789ab")

// specVectors returns the hex dumps of docs/PROTOCOL.md's test vectors.
func specVectors(tb testing.TB) [][]byte {
	raw, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		tb.Fatalf("read spec: %v", err)
	}
	var out [][]byte
	var cur []byte
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case line == "```vector":
			in, cur = true, nil
		case in && line == "```":
			in = false
			out = append(out, cur)
		case in && len(line) > 5 && line[4] == ':':
			b, err := hex.DecodeString(strings.ReplaceAll(line[5:], " ", ""))
			if err == nil {
				cur = append(cur, b...)
			}
		}
	}
	if len(out) == 0 {
		tb.Fatal("no vectors in spec")
	}
	return out
}

// reencode rebuilds a datagram from a decoded packet with the same codec.
func reencode(c *wire.Codec, p *wire.Packet) ([]byte, wire.Errno) {
	var ps wire.Params
	seg := make([]byte, wire.MaxDatagram)
	ps.Reset(seg)
	for i := 0; i < p.NParams(); i++ {
		ps.Value(p.Param(i))
	}
	dg := make([]byte, wire.MaxDatagram)
	h := p.Header
	n, e := c.EncodeParams(dg, &h, &ps)
	return dg[:n], e
}

// FuzzDecode: decoding arbitrary bytes never panics; with the integrity
// field fixed up so that parsing reaches the parameters, any datagram the
// decoder accepts re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, v := range specVectors(f) {
		f.Add(v, false)
		f.Add(v, true)
	}
	plain, _ := wire.NewCodec(wire.MaxDatagram, nil)
	keyed, _ := wire.NewCodec(wire.MaxDatagram, fuzzKey)
	f.Fuzz(func(t *testing.T, b []byte, auth bool) {
		c := plain
		if auth {
			c = keyed
		}
		var p wire.Packet
		_ = c.Decode(&p, b)
		b = append([]byte(nil), b...)
		c.Reseal(b)
		if r := c.Decode(&p, b); r != wire.ReasonNone {
			return
		}
		out, e := reencode(c, &p)
		if e != wire.OK {
			t.Fatalf("accepted datagram does not re-encode: %v", e)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", b, out)
		}
	})
}

// FuzzRoundTrip: encode fields and parameters drawn from the input, decode,
// and compare.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(wire.FlagRequest), uint16(0x1001), uint16(0), uint32(1), uint32(2), uint64(77), uint32(5), uint32(9), int64(-5), "hello", []byte{1, 2}, 2.5, true)
	f.Add(uint8(wire.FlagReply|wire.FlagError), uint16(3), uint16(6), uint32(0), uint32(0), uint64(0), uint32(0), uint32(0), int64(0), "", []byte(nil), math.Inf(1), false)
	plain, _ := wire.NewCodec(0, nil)
	keyed, _ := wire.NewCodec(0, fuzzKey)
	f.Fuzz(func(t *testing.T, flags uint8, callNo, errno uint16, src, dst uint32, callID uint64,
		incarn, budget uint32, i int64, s string, bs []byte, fl float64, auth bool) {
		c := plain
		if auth {
			c = keyed
		}
		h := wire.Header{Flags: flags, CallNo: callNo, Errno: wire.Errno(errno), Src: src, Dst: dst,
			CallID: callID, Incarnation: incarn, Budget: budget, Stamp: incarn ^ budget}
		var ps wire.Params
		ps.Reset(make([]byte, 2048))
		ps.Int64(i)
		ps.String(s)
		ps.Bytes(bs)
		ps.Float64(fl)
		ps.Bool(auth)
		dg := make([]byte, wire.DefaultMaxDatagram)
		n, e := c.EncodeParams(dg, &h, &ps)
		if e != wire.OK {
			return // invalid flag combination or too big: refused before sending
		}
		var p wire.Packet
		r := c.Decode(&p, dg[:n])
		if !utf8Valid(s) {
			if r != wire.ReasonUTF8 {
				t.Fatalf("invalid UTF-8 string accepted or misreported: %v", r)
			}
			return
		}
		if r != wire.ReasonNone {
			t.Fatalf("decode of own encoding: %v", r)
		}
		want := h
		want.Flags = h.Flags&^wire.FlagAuth | map[bool]uint8{true: wire.FlagAuth}[auth]
		if p.Header != want {
			t.Fatalf("header %+v want %+v", p.Header, want)
		}
		if p.Param(0).Int64() != i || p.Param(1).Str() != s || !bytes.Equal(p.Param(2).Bytes(), bs) ||
			math.Float64bits(p.Param(3).Float64()) != math.Float64bits(fl) || p.Param(4).Bool() != auth {
			t.Fatalf("params differ")
		}
	})
}

// FuzzWalk: walking arbitrary bytes as a parameter segment never panics,
// and the walker agrees with Decode: a segment it accepts with n
// parameters decodes, inside a datagram declaring n, to the same values;
// a segment it stops on with reason r after k parameters is refused with r
// inside a datagram declaring k+1.
func FuzzWalk(f *testing.F) {
	for _, v := range specVectors(f) {
		if len(v) >= wire.HeaderSize {
			f.Add(v[wire.HeaderSize:])
		}
	}
	f.Add([]byte{byte(wire.TypeBool), 0, 1, 2})
	f.Add([]byte{byte(wire.TypeString), 0, 1, 0xff})
	c, _ := wire.NewCodec(wire.MaxDatagram, nil)
	dg := make([]byte, wire.MaxDatagram)
	f.Fuzz(func(t *testing.T, seg []byte) {
		w := wire.Walk(seg)
		var vals []wire.Value
		for v, ok := w.Next(); ok; v, ok = w.Next() {
			vals = append(vals, v)
		}
		if _, ok := w.Next(); ok {
			t.Fatal("walker goes on after its end")
		}
		n, r := wire.CheckSegment(seg)
		if r != w.Reason() || (r == wire.ReasonNone && n != len(vals)) {
			t.Fatalf("CheckSegment %d %v, walker %d %v", n, r, len(vals), w.Reason())
		}
		count := len(vals)
		if r != wire.ReasonNone {
			count++
		}
		h := wire.Header{Flags: wire.FlagRequest, CallNo: wire.CallUserBase}
		sz, e := c.Encode(dg, &h, seg, count)
		if e != wire.OK {
			return // too many parameters or too long to encode at all
		}
		var p wire.Packet
		if got := c.Decode(&p, dg[:sz]); got != r {
			t.Fatalf("decode %v, walker %v after %d parameters", got, r, len(vals))
		}
		if r != wire.ReasonNone {
			return
		}
		for i, v := range vals {
			if q := p.Param(i); q.Type != v.Type || !bytes.Equal(q.Raw, v.Raw) {
				t.Fatalf("parameter %d: decode %v %x, walker %v %x", i, q.Type, q.Raw, v.Type, v.Raw)
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestGofuzzRoundTrip generates random headers and parameter lists with
// gofuzz and checks encode/decode round trips, thousands per run.
func TestGofuzzRoundTrip(t *testing.T) {
	type param struct {
		Kind uint8
		I    int64
		U    uint64
		F    float64
		B    bool
		Raw  []byte
		S    string
	}
	type input struct {
		H      wire.Header
		Params []param
		Auth   bool
	}
	// kinds holds, for each parameter type, how a param is appended and
	// how the decoded value is checked against it; Kind picks the row.
	// Strings are sent as valid UTF-8 (the decoder rejects anything else).
	type kind struct {
		t    wire.Type
		put  func(*wire.Params, param)
		same func(wire.Value, param) bool
	}
	str := func(p param) string { return strings.ToValidUTF8(p.S, "?") }
	kinds := [...]kind{
		{wire.TypeInt64, func(ps *wire.Params, p param) { ps.Int64(p.I) }, func(v wire.Value, p param) bool { return v.Int64() == p.I }},
		{wire.TypeUint64, func(ps *wire.Params, p param) { ps.Uint64(p.U) }, func(v wire.Value, p param) bool { return v.Uint64() == p.U }},
		{wire.TypeFloat64, func(ps *wire.Params, p param) { ps.Float64(p.F) },
			func(v wire.Value, p param) bool { return math.Float64bits(v.Float64()) == math.Float64bits(p.F) }},
		{wire.TypeBool, func(ps *wire.Params, p param) { ps.Bool(p.B) }, func(v wire.Value, p param) bool { return v.Bool() == p.B }},
		{wire.TypeBytes, func(ps *wire.Params, p param) { ps.Bytes(p.Raw) }, func(v wire.Value, p param) bool { return bytes.Equal(v.Raw, p.Raw) }},
		{wire.TypeString, func(ps *wire.Params, p param) { ps.String(str(p)) }, func(v wire.Value, p param) bool { return string(v.Raw) == str(p) }},
	}
	fz := gofuzz.NewWithSeed(1).NilChance(0.1).NumElements(0, 12)
	plain, _ := wire.NewCodec(0, nil)
	keyed, _ := wire.NewCodec(0, fuzzKey)
	ok, refused := 0, 0
	for n := 0; n < 5000; n++ {
		var in input
		fz.Fuzz(&in)
		// Valid flag shapes most of the time, so most cases reach decode.
		switch in.H.Flags % 4 {
		case 0:
			in.H.Flags = wire.FlagRequest | in.H.Flags&(wire.FlagOneWay|wire.FlagRetrans)
			in.H.Errno = 0
		case 1:
			in.H.Flags = wire.FlagReply
			in.H.Errno = 0
		case 2:
			in.H.Flags = wire.FlagReply | wire.FlagError
			if in.H.Errno == 0 {
				in.H.Errno = wire.EBUSY
			}
		}
		c := plain
		if in.Auth {
			c = keyed
		}
		var ps wire.Params
		ps.Reset(make([]byte, 1400))
		for _, p := range in.Params {
			kinds[p.Kind%uint8(len(kinds))].put(&ps, p)
		}
		dg := make([]byte, wire.DefaultMaxDatagram)
		sz, e := c.EncodeParams(dg, &in.H, &ps)
		if e != wire.OK {
			refused++
			continue
		}
		var p wire.Packet
		if r := c.Decode(&p, dg[:sz]); r != wire.ReasonNone {
			t.Fatalf("case %d: decode %v", n, r)
		}
		if p.NParams() != len(in.Params) {
			t.Fatalf("case %d: %d params, want %d", n, p.NParams(), len(in.Params))
		}
		for i, pr := range in.Params {
			k, got := kinds[pr.Kind%uint8(len(kinds))], p.Param(i)
			if got.Type != k.t {
				t.Fatalf("case %d param %d: type %v want %v", n, i, got.Type, k.t)
			}
			if !k.same(got, pr) {
				t.Fatalf("case %d param %d: %v %x, sent %+v", n, i, got.Type, got.Raw, pr)
			}
		}
		ok++
	}
	if ok < 3000 {
		t.Fatalf("only %d of 5000 cases reached decode (%d refused)", ok, refused)
	}
}
