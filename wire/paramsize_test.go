package wire

import "testing"

// TestParamSizes: ParamFixed8Size and ParamBoolSize are what Params
// writes for one parameter of each fixed-size type, so that a buffer
// sized with them holds the parameters exactly.
func TestParamSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		put  func(p *Params)
		want int
	}{
		{"i64", func(p *Params) { p.Int64(-1) }, ParamFixed8Size},
		{"u64", func(p *Params) { p.Uint64(1) }, ParamFixed8Size},
		{"f64", func(p *Params) { p.Float64(0.5) }, ParamFixed8Size},
		{"bool", func(p *Params) { p.Bool(true) }, ParamBoolSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p Params
			p.Reset(make([]byte, c.want))
			c.put(&p)
			if e := p.Err(); e != OK {
				t.Fatalf("a buffer of %d bytes: %v", c.want, e)
			}
			if p.Len() != c.want {
				t.Fatalf("wrote %d bytes, want %d", p.Len(), c.want)
			}
		})
	}
}
