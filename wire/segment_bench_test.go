package wire

import "testing"

// BenchmarkParams measures the parameter-segment check of Decode alone
// (no header, no integrity field): the four parameters of BenchmarkDecode
// and a full segment of MaxParams mixed parameters.
func BenchmarkParams(b *testing.B) {
	for _, tc := range []struct {
		name  string
		build func(*Params, []byte)
	}{
		{"four", fourParams},
		{"max", func(p *Params, buf []byte) {
			p.Reset(buf)
			for i := 0; i < MaxParams/4; i++ {
				p.Int64(int64(i))
				p.Bool(i&1 == 1)
				p.String("registry/db")
				p.Bytes([]byte("0123"))
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := mustCodec(b, 0, nil)
			var p Params
			var dg [DefaultMaxDatagram]byte
			h := sampleHeader()
			tc.build(&p, dg[HeaderSize:])
			n, e := c.EncodeParams(dg[:], &h, &p)
			if e != OK {
				b.Fatal(e)
			}
			var pk Packet
			if r := c.Decode(&pk, dg[:n]); r != ReasonNone {
				b.Fatal(r)
			}
			b.SetBytes(int64(n - HeaderSize))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := parseParams(&pk); r != ReasonNone {
					b.Fatal(r)
				}
			}
		})
	}
}
