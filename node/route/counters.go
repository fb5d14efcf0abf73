package route

import (
	"math/bits"
	"sort"
	"sync/atomic"

	"fastcall/rfc"
)

// HistBuckets is the number of latency buckets of a sub-cluster: bucket 0
// counts latencies under 1 µs, bucket i (1 <= i < HistBuckets-1) those in
// [2^(i-1), 2^i) µs, and the last bucket everything longer.
const HistBuckets = 32

// clusterCounters are the load counters of one sub-cluster. They outlive
// changes of the sub-cluster's member list. All fields are atomic.
type clusterCounters struct {
	calls     atomic.Uint64
	errors    atomic.Uint64
	failovers atomic.Uint64
	hist      [HistBuckets]atomic.Uint64
}

// histBucket returns the bucket of a latency in µs.
func histBucket(us uint64) int {
	i := bits.Len64(us)
	if i >= HistBuckets {
		return HistBuckets - 1
	}
	return i
}

// record counts one call of elapsed ns with outcome failed.
func (c *clusterCounters) record(ns int64, failed bool) {
	c.calls.Add(1)
	if failed {
		c.errors.Add(1)
	}
	if ns < 0 {
		ns = 0
	}
	c.hist[histBucket(uint64(ns)/1000)].Add(1)
}

// ClusterCounters is a snapshot of one sub-cluster's counters.
type ClusterCounters struct {
	Name      string
	Calls     uint64 // routed calls resolved to the sub-cluster
	Errors    uint64 // of which ended with an error number
	Failovers uint64 // standbys promoted
	P50us     uint64 // upper bound of the bucket holding the median
	P99us     uint64
	Hist      [HistBuckets]uint64
}

func (c *clusterCounters) snapshot(name string) ClusterCounters {
	s := ClusterCounters{Name: name, Calls: c.calls.Load(), Errors: c.errors.Load(), Failovers: c.failovers.Load()}
	for i := range c.hist {
		s.Hist[i] = c.hist[i].Load()
	}
	s.P50us = histPercentile(&s.Hist, 0.50)
	s.P99us = histPercentile(&s.Hist, 0.99)
	return s
}

// histPercentile returns the upper bound in µs of the bucket holding the
// q-th fraction of the counts, 0 when there are none.
func histPercentile(h *[HistBuckets]uint64, q float64) uint64 {
	i := rfc.QuantileBucket(h[:], q)
	if i < 0 {
		return 0
	}
	return uint64(1) << i
}

// Counters returns a snapshot of every sub-cluster's counters, by name.
// Sub-clusters removed from the table keep their counters.
func (r *Router) Counters() []ClusterCounters {
	r.tbl.mu.Lock()
	out := make([]ClusterCounters, 0, len(r.tbl.mu.counters))
	for name, c := range r.tbl.mu.counters {
		out = append(out, c.snapshot(name))
	}
	r.tbl.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
