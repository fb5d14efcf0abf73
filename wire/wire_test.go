package wire

import (
	"bytes"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var testKey = []byte("fastcall-test-key-0123456789abcd")

func mustCodec(t testing.TB, limit int, key []byte) *Codec {
	c, err := NewCodec(limit, key)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

// fourParams builds the benchmark's request: four parameters, about 64
// bytes of segment.
func fourParams(p *Params, buf []byte) {
	p.Reset(buf)
	p.Int64(-42)
	p.Uint64(1 << 60)
	p.String("registry/services/db")
	p.Bytes([]byte("0123456789abcdef"))
}

func sampleHeader() Header {
	return Header{Flags: FlagRequest, CallNo: CallUserBase + 1, Src: 7, Dst: 9,
		CallID: 0x0102030405060708, Incarnation: 0xdeadbeef, PeerInc: 0xfeedface, Budget: 250000, Stamp: 123456789}
}

func TestRoundTrip(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		c := mustCodec(t, 0, key)
		var p Params
		var seg [512]byte
		p.Reset(seg[:])
		p.Int64(math.MinInt64)
		p.Uint64(math.MaxUint64)
		p.Float64(-1.5)
		p.Bool(true)
		p.Bool(false)
		p.Bytes(nil)
		p.Bytes([]byte{0, 1, 2})
		p.String("héllo")
		if p.Err() != OK {
			t.Fatalf("params: %v", p.Err())
		}
		h := sampleHeader()
		var dg [DefaultMaxDatagram]byte
		n, e := c.EncodeParams(dg[:], &h, &p)
		if e != OK {
			t.Fatalf("encode: %v", e)
		}
		var pk Packet
		if r := c.Decode(&pk, dg[:n]); r != ReasonNone {
			t.Fatalf("decode: %v", r)
		}
		want := h
		if key != nil {
			want.Flags |= FlagAuth
		}
		if pk.Header != want {
			t.Fatalf("header %+v, want %+v", pk.Header, want)
		}
		if pk.NParams() != 8 || pk.Param(0).Int64() != math.MinInt64 || pk.Param(1).Uint64() != math.MaxUint64 ||
			pk.Param(2).Float64() != -1.5 || !pk.Param(3).Bool() || pk.Param(4).Bool() ||
			len(pk.Param(5).Bytes()) != 0 || !bytes.Equal(pk.Param(6).Bytes(), []byte{0, 1, 2}) ||
			pk.Param(7).Str() != "héllo" {
			t.Fatalf("params wrong")
		}
		if pk.Param(8).Type != TypeInvalid || pk.Param(-1).Type != TypeInvalid {
			t.Fatalf("out of range param")
		}
		s := Schema{TypeInt64, TypeUint64, TypeFloat64, TypeBool, TypeBool, TypeBytes, TypeBytes, TypeString}
		if s.Check(&pk) != OK {
			t.Fatalf("schema should match")
		}
		if (Schema{TypeInt64}).Check(&pk) != EINVAL || s[:7].Match(&pk) {
			t.Fatalf("schema should not match")
		}
		s[7] = TypeBytes
		if s.Match(&pk) {
			t.Fatalf("string is not bytes")
		}
	}
}

// encodeValid returns a valid checksummed request with a string parameter.
func encodeValid(t testing.TB, c *Codec) []byte {
	var p Params
	var seg [64]byte
	p.Reset(seg[:])
	p.Int64(5)
	p.String("ok")
	h := sampleHeader()
	dg := make([]byte, 256)
	n, e := c.EncodeParams(dg, &h, &p)
	if e != OK {
		t.Fatal(e)
	}
	return dg[:n]
}

func TestDecodeRejects(t *testing.T) {
	plain := mustCodec(t, 0, nil)
	keyed := mustCodec(t, 0, testKey)
	other := mustCodec(t, 0, []byte("another-cluster-key-000000000000"))
	small := mustCodec(t, HeaderSize+8, nil)
	type mut func(b []byte) []byte
	reseal := func(f func(b []byte)) mut {
		return func(b []byte) []byte { f(b); plain.Reseal(b); return b }
	}
	cases := []struct {
		name  string
		codec *Codec
		from  *Codec
		mut   mut
		want  Reason
		errno Errno
	}{
		{"ok", plain, plain, func(b []byte) []byte { return b }, ReasonNone, OK},
		{"empty", plain, plain, func(b []byte) []byte { return b[:0] }, ReasonShort, EPROTO},
		{"short", plain, plain, func(b []byte) []byte { return b[:HeaderSize-1] }, ReasonShort, EPROTO},
		{"too-big", small, plain, func(b []byte) []byte { return b }, ReasonTooBig, EMSGSIZE},
		{"magic", plain, plain, reseal(func(b []byte) { b[0] = 0 }), ReasonMagic, EPROTO},
		{"version", plain, plain, reseal(func(b []byte) { b[OffVersion] = 9 }), ReasonVersion, EPROTO},
		{"reserved-flag", plain, plain, reseal(func(b []byte) { b[OffFlags] |= 0x80 }), ReasonFlags, EPROTO},
		{"req-and-reply", plain, plain, reseal(func(b []byte) { b[OffFlags] |= FlagReply }), ReasonFlags, EPROTO},
		{"neither", plain, plain, reseal(func(b []byte) { b[OffFlags] &^= FlagRequest }), ReasonFlags, EPROTO},
		{"errno-no-flag", plain, plain, reseal(func(b []byte) { b[OffErrno+1] = 3 }), ReasonErrno, EPROTO},
		{"truncated", plain, plain, func(b []byte) []byte { return b[:len(b)-1] }, ReasonLength, EPROTO},
		{"trailing", plain, plain, func(b []byte) []byte { return append(b, 0) }, ReasonLength, EPROTO},
		{"count-huge", plain, plain, reseal(func(b []byte) { put16(b[OffNParams:], 65535) }), ReasonParamCount, EPROTO},
		{"count-more", plain, plain, reseal(func(b []byte) { put16(b[OffNParams:], 3) }), ReasonParamCount, EPROTO},
		{"count-less", plain, plain, reseal(func(b []byte) { put16(b[OffNParams:], 1) }), ReasonTrailing, EPROTO},
		{"trailing-bytes", plain, plain, func(b []byte) []byte {
			b = append(b, 0, 0)
			put16(b[OffPLen:], be16(b[OffPLen:])+2)
			plain.Reseal(b)
			return b
		}, ReasonTrailing, EPROTO},
		{"segment-ends-early", plain, plain, func(b []byte) []byte {
			put16(b[OffNParams:], 3)
			b = append(b, byte(TypeBytes), 0)
			put16(b[OffPLen:], be16(b[OffPLen:])+2)
			plain.Reseal(b)
			return b
		}, ReasonParamCount, EPROTO},
		{"param-type", plain, plain, reseal(func(b []byte) { b[HeaderSize] = 99 }), ReasonParamType, EPROTO},
		{"param-len-fixed", plain, plain, reseal(func(b []byte) { put16(b[HeaderSize+1:], 7) }), ReasonParamLen, EPROTO},
		{"param-len-past", plain, plain, reseal(func(b []byte) { put16(b[HeaderSize+ParamHdrSize+8+1:], 500) }), ReasonParamLen, EPROTO},
		{"utf8", plain, plain, reseal(func(b []byte) { b[len(b)-1] = 0xff }), ReasonUTF8, EPROTO},
		{"bool", plain, plain, reseal(func(b []byte) {
			b[HeaderSize] = byte(TypeBool)
			put16(b[HeaderSize+1:], 1)
			b[HeaderSize+3] = 2
			// keep the total consistent: the rest becomes a bytes param
			b[HeaderSize+4] = byte(TypeBytes)
			put16(b[HeaderSize+5:], 4)
		}), ReasonBool, EPROTO},
		{"checksum", plain, plain, func(b []byte) []byte { b[OffCallID] ^= 1; return b }, ReasonChecksum, EPROTO},
		{"checksum-pad", plain, plain, func(b []byte) []byte { b[OffTag+SizeTag-1] = 1; return b }, ReasonChecksum, EPROTO},
		{"param-flip", plain, plain, func(b []byte) []byte { b[len(b)-2] ^= 0x20; return b }, ReasonChecksum, EPROTO},
		{"auth-ok", keyed, keyed, func(b []byte) []byte { return b }, ReasonNone, OK},
		{"auth-missing", keyed, plain, func(b []byte) []byte { return b }, ReasonUnauth, EPERM},
		{"auth-wrong-key", keyed, other, func(b []byte) []byte { return b }, ReasonTag, EPERM},
		{"auth-no-key", plain, keyed, func(b []byte) []byte { return b }, ReasonTag, EPERM},
		{"auth-flip", keyed, keyed, func(b []byte) []byte { b[OffSrc] ^= 1; return b }, ReasonTag, EPERM},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mut(encodeValid(t, tc.from))
			var p Packet
			r := tc.codec.Decode(&p, b)
			if r != tc.want || r.Errno() != tc.errno {
				t.Fatalf("got %v (%v), want %v (%v)", r, r.Errno(), tc.want, tc.errno)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := []byte("old-cluster-key-0000000000000000")
	newKey := []byte("new-cluster-key-1111111111111111")
	sender := mustCodec(t, 0, oldKey)
	recv := mustCodec(t, 0, newKey)
	var p Packet
	b := encodeValid(t, sender)
	if r := recv.Decode(&p, b); r != ReasonTag {
		t.Fatalf("old key before rotation window: %v", r)
	}
	if err := recv.SetKeys(newKey, oldKey); err != nil {
		t.Fatal(err)
	}
	if r := recv.Decode(&p, b); r != ReasonNone {
		t.Fatalf("old key during rotation: %v", r)
	}
	if r := recv.Decode(&p, encodeValid(t, recv)); r != ReasonNone {
		t.Fatalf("new key: %v", r)
	}
	if err := recv.SetKeys(newKey, nil); err != nil {
		t.Fatal(err)
	}
	if r := recv.Decode(&p, b); r != ReasonTag {
		t.Fatalf("old key after rotation: %v", r)
	}
	if _, err := NewCodec(0, []byte("short")); err != EINVAL {
		t.Fatalf("short key: %v", err)
	}
	if _, err := NewCodec(MaxDatagram+1, nil); err != EINVAL {
		t.Fatalf("big limit: %v", err)
	}
}

func TestEncodeLimits(t *testing.T) {
	c := mustCodec(t, 0, nil)
	var p Params
	big := make([]byte, 4096)
	p.Reset(big)
	p.Bytes(make([]byte, DefaultMaxDatagram))
	h := sampleHeader()
	dg := make([]byte, MaxDatagram)
	if _, e := c.EncodeParams(dg, &h, &p); e != EMSGSIZE {
		t.Fatalf("oversize datagram: %v", e)
	}
	p.Reset(big[:10])
	p.Int64(1)
	if p.Err() != EMSGSIZE || p.Count() != 0 || p.Len() != 0 {
		t.Fatalf("param past buffer: %v %d %d", p.Err(), p.Count(), p.Len())
	}
	p.Reset(big)
	for i := 0; i < MaxParams; i++ {
		p.Bool(true)
	}
	if p.Err() != OK {
		t.Fatal(p.Err())
	}
	p.Bool(true)
	if p.Err() != EINVAL || p.Count() != MaxParams {
		t.Fatalf("too many params: %v", p.Err())
	}
	bad := sampleHeader()
	bad.Flags = FlagRequest | FlagReply
	if _, e := c.Encode(dg, &bad, nil, 0); e != EINVAL {
		t.Fatalf("bad flags: %v", e)
	}
	bad.Flags = FlagReply
	bad.Errno = EBUSY
	if _, e := c.Encode(dg, &bad, nil, 0); e != EINVAL {
		t.Fatalf("errno without flag: %v", e)
	}
	bad.Flags = FlagReply | FlagError
	n, e := c.Encode(dg, &bad, nil, 0)
	if e != OK || n != HeaderSize {
		t.Fatalf("error reply: %v %d", e, n)
	}
	if _, e := c.Encode(dg[:HeaderSize-1], &bad, nil, 0); e != EMSGSIZE {
		t.Fatalf("short dst: %v", e)
	}
	max := mustCodec(t, MaxDatagram, nil)
	p.Reset(big[:0:0])
	seg := make([]byte, MaxDatagram-HeaderSize)
	seg[0] = byte(TypeBytes)
	put16(seg[1:], uint16(len(seg)-ParamHdrSize))
	n, e = max.Encode(dg, &h, seg, 1)
	var pk Packet
	if e != OK || n != MaxDatagram || max.Decode(&pk, dg[:n]) != ReasonNone {
		t.Fatalf("max datagram: %v %d", e, n)
	}
}

func TestRetransReseal(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		c := mustCodec(t, 0, key)
		b := encodeValid(t, c)
		c.Restamp(b, 77, 88, true)
		var p Packet
		if r := c.Decode(&p, b); r != ReasonNone || p.Flags&FlagRetrans == 0 || p.Budget != 77 || p.Stamp != 88 {
			t.Fatalf("retrans: %v %x", r, p.Flags)
		}
	}
}

func TestEncodeDecodeAllocs(t *testing.T) {
	for _, key := range [][]byte{nil, testKey} {
		c := mustCodec(t, 0, key)
		var p Params
		var seg [256]byte
		var dg [DefaultMaxDatagram]byte
		var pk Packet
		h := sampleHeader()
		allocs := testing.AllocsPerRun(200, func() {
			fourParams(&p, seg[:])
			n, e := c.EncodeParams(dg[:], &h, &p)
			if e != OK {
				panic(e)
			}
			if r := c.Decode(&pk, dg[:n]); r != ReasonNone {
				panic(r)
			}
			_ = pk.Param(2).Bytes()
			_ = Schema{TypeInt64, TypeUint64, TypeString, TypeBytes}.Check(&pk)
		})
		if allocs != 0 {
			t.Fatalf("key=%v: %v allocs per encode+decode", key != nil, allocs)
		}
	}
}

func TestErrnoNames(t *testing.T) {
	for e := OK; e <= errnoLast; e++ {
		n := e.String()
		if n == "" || strings.HasPrefix(n, "E?") {
			t.Fatalf("errno %d has no name", e)
		}
		back, ok := ErrnoByName(n)
		if !ok || back != e {
			t.Fatalf("ErrnoByName(%q) = %v", n, back)
		}
		if !strings.HasPrefix(e.Error(), n+": ") {
			t.Fatalf("Error() = %q", e.Error())
		}
	}
	if s := (EUSER + 7).String(); s != "EUSER+7" {
		t.Fatalf("user errno: %q", s)
	}
	if s := Errno(500).String(); s != "E?500" {
		t.Fatalf("unknown errno: %q", s)
	}
	if AsErrno(nil) != OK || AsErrno(EBUSY) != EBUSY || AsErrno(os.ErrClosed) != EFAULT {
		t.Fatal("AsErrno")
	}
	for r := ReasonNone; r < reasonLimit; r++ {
		if strings.HasPrefix(r.String(), "reason?") {
			t.Fatalf("reason %d has no name", r)
		}
	}
}

// TestNoFmt keeps fmt, reflect and encoding/binary out of the codec.
func TestNoFmt(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "fmt" || p == "reflect" || p == "encoding/binary" {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

// benchCodecs runs bench once per sealing mode (checksum, keyed), given a
// codec of the mode and a datagram buffer whose parameter segment holds
// fourParams, described by p, under the sample header h.
func benchCodecs(b *testing.B, bench func(b *testing.B, c *Codec, dg []byte, h *Header, p *Params)) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"checksum", nil}, {"keyed", testKey}} {
		b.Run(mode.name, func(b *testing.B) {
			c := mustCodec(b, 0, mode.key)
			var p Params
			dg := make([]byte, DefaultMaxDatagram)
			h := sampleHeader()
			fourParams(&p, dg[HeaderSize:])
			bench(b, c, dg, &h, &p)
		})
	}
}

// encodeToDecode encodes h and p into dg for a decode benchmark, which
// it sets up to report the datagram's bytes and the allocations; it
// returns the datagram's length.
func encodeToDecode(b *testing.B, c *Codec, dg []byte, h *Header, p *Params) int {
	b.Helper()
	n, e := c.EncodeParams(dg, h, p)
	if e != OK {
		b.Fatal(e)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	return n
}

// benchDecode is the body of every decode benchmark: it encodes h and p
// into dg (encodeToDecode), then decodes the datagram in the timed loop
// with Decode, or with DecodeOwned when owned.
func benchDecode(owned bool) func(b *testing.B, c *Codec, dg []byte, h *Header, p *Params) {
	return func(b *testing.B, c *Codec, dg []byte, h *Header, p *Params) {
		n := encodeToDecode(b, c, dg, h, p)
		var pk Packet
		for b.Loop() {
			var r Reason
			if owned {
				r = c.DecodeOwned(&pk, dg[:n])
			} else {
				r = c.Decode(&pk, dg[:n])
			}
			if r != ReasonNone {
				b.Fatal(r)
			}
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	benchCodecs(b, func(b *testing.B, c *Codec, dg []byte, h *Header, p *Params) {
		b.SetBytes(int64(HeaderSize + p.Len()))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fourParams(p, dg[HeaderSize:])
			h.CallID++
			if _, e := c.EncodeParams(dg, h, p); e != OK {
				b.Fatal(e)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) { benchCodecs(b, benchDecode(false)) }
