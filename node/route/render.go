package route

import (
	"fastcall/node/route/audit"
	"fastcall/wire"
)

// auditParamsMax bounds the rendered parameters of one audit record; past
// it the rendering ends with " ...".
const auditParamsMax = audit.ParamsMax

// renderParams renders the parameters of pkt from index first on into
// dst (at most auditParamsMax bytes) and returns the length used. Each
// parameter is "type:value" as wire.AppendValue writes it with valueMax
// as the cut (so no tab or newline survives), separated by single spaces.
// It allocates nothing.
func renderParams(dst *[auditParamsMax]byte, pkt *wire.Packet, first, valueMax int) int {
	var tmp [8*maxValueMax + 48]byte
	b := dst[:0]
	for i := first; i < pkt.NParams(); i++ {
		item := wire.AppendValue(tmp[:0], pkt.Param(i), valueMax)
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
