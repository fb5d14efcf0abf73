package rfc

import "testing"

// TestQuantileBucket: the bucket that holds a quantile is the first whose
// running total reaches the rank q × total rounded to the nearest, at
// least 1; -1 when there are no counts.
func TestQuantileBucket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts []uint64
		q      float64
		want   int
	}{
		{"empty", []uint64{0, 0, 0}, 0.5, -1},
		{"none", nil, 0.99, -1},
		{"one", []uint64{0, 1, 0}, 0.5, 1},
		{"rank at least 1", []uint64{0, 1, 0, 5}, 0.01, 1},
		{"median rounds up", []uint64{1, 1, 1, 1}, 0.5, 1},
		{"median of odd", []uint64{1, 1, 1}, 0.5, 1},
		{"rounded to nearest", []uint64{1, 1, 1, 1, 1, 1}, 0.25, 1},
		{"p99 of 100", []uint64{98, 1, 1}, 0.99, 1},
		{"all", []uint64{3, 0, 4, 0}, 1, 2},
		{"above one", []uint64{1, 1}, 2, 1},
	} {
		if got := QuantileBucket(tc.counts, tc.q); got != tc.want {
			t.Errorf("%s: QuantileBucket(%v, %v) = %d, want %d", tc.name, tc.counts, tc.q, got, tc.want)
		}
	}
}

// BenchmarkLatencyRecord measures what the call path pays per recorded
// latency: one histogram bucket increment and, for the metrics, the sum.
func BenchmarkLatencyRecord(b *testing.B) {
	var cs callStats
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cs.lat.record(int64(i&0xffff) * 1000)
	}
}
