package wire

import (
	"strconv"
	"testing"
)

// benchPayloads are the bytes-parameter sizes the call benchmarks use.
var benchPayloads = []int{64, 1024}

// benchSealModes runs bench for each sealing mode (checksum, keyed) and
// payload size, with a codec of the mode and a datagram buffer whose
// segment is one bytes parameter of the size, described by p.
func benchSealModes(b *testing.B, bench func(b *testing.B, c *Codec, dg []byte, h *Header, p *Params)) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"checksum", nil}, {"keyed", []byte("fastcall-bench-key-0123456789abc")}} {
		for _, n := range benchPayloads {
			b.Run(mode.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				c, err := NewCodec(0, mode.key)
				if err != nil {
					b.Fatal(err)
				}
				var p Params
				dg := make([]byte, DefaultMaxDatagram)
				val := make([]byte, n)
				p.Reset(dg[HeaderSize:])
				p.Bytes(val)
				h := Header{Flags: FlagRequest, CallNo: CallUserBase + 1, Src: 7, Dst: 9, CallID: 1, Stamp: 1}
				bench(b, c, dg, &h, &p)
			})
		}
	}
}

func BenchmarkEncodePayload(b *testing.B) {
	benchSealModes(b, func(b *testing.B, c *Codec, dg []byte, h *Header, p *Params) {
		b.SetBytes(int64(HeaderSize + p.Len()))
		b.ReportAllocs()
		for b.Loop() {
			h.CallID++
			if _, e := c.EncodeParams(dg, h, p); e != OK {
				b.Fatal(e)
			}
		}
	})
}

func BenchmarkDecodePayload(b *testing.B)      { benchSealModes(b, benchDecode(false)) }
func BenchmarkDecodeOwnedPayload(b *testing.B) { benchSealModes(b, benchDecode(true)) }
