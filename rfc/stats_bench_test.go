package rfc

import "testing"

// BenchmarkLatencyRecord measures what the call path pays per recorded
// latency: one histogram bucket increment and, for the metrics, the sum.
func BenchmarkLatencyRecord(b *testing.B) {
	var cs callStats
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cs.lat.record(int64(i&0xffff) * 1000)
	}
}
