package rfc

import (
	"math/bits"
	"sync/atomic"

	"fastcall/wire"
)

// Error-number buckets of a call's counters: one per known engine error
// number, and one for every handler-defined number.
const (
	errBuckets  = int(wire.EAGAIN) + 2
	errUserSlot = errBuckets - 1
	errTimedOut = wire.ETIMEDOUT
)

func errSlot(e wire.Errno) int {
	if int(e) < errUserSlot {
		return int(e)
	}
	return errUserSlot
}

// errCounters counts results by error number.
type errCounters [errBuckets]atomic.Uint64

func (c *errCounters) add(e wire.Errno) { c[errSlot(e)].Add(1) }

// Latency histogram: values in microseconds; bucket b covers a power of two
// split into histSub linear sub-buckets, so a percentile read from it is
// within 1/histSub of the true value.
const (
	histSub     = 4
	histSubBits = 2
	histPow     = 32
	histBuckets = histPow * histSub
)

type histogram struct {
	b   [histBuckets]atomic.Uint64
	sum atomic.Uint64 // nanoseconds, for the metrics' _sum
}

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	p := bits.Len64(us) - 1 // us in [2^p, 2^(p+1))
	sub := int(us>>(p-histSubBits)) & (histSub - 1)
	i := (p-histSubBits+1)*histSub + sub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histUpper returns the upper bound (µs) of bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	p := i/histSub + histSubBits - 1
	sub := uint64(i % histSub)
	return (uint64(histSub)+sub+1)<<(p-histSubBits) - 1
}

func (h *histogram) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.b[histIndex(uint64(ns)/1000)].Add(1)
	h.sum.Add(uint64(ns))
}

// Latency buckets of the metrics: cumulative counts at every power of two
// of microseconds from 2^LatencyFirstPow to 2^(LatencyFirstPow+
// LatencyBuckets-1). Each bound is the upper end of a group of histogram
// buckets, so the cumulative counts are exact, not interpolated.
const (
	LatencyBuckets  = 22
	LatencyFirstPow = 3
)

// LatencyBoundUs returns the bound of latency bucket i in microseconds:
// bucket i counts the calls that took less than it.
func LatencyBoundUs(i int) uint64 { return 1 << (LatencyFirstPow + i) }

// Latency is a latency distribution in the metrics' form.
type Latency struct {
	// Counts[i] is the number of calls that took less than
	// LatencyBoundUs(i) microseconds; it never decreases with i.
	Counts [LatencyBuckets]uint64
	Count  uint64 // every call, the slowest included
	SumNs  uint64 // total time, nanoseconds
}

// latency reads h as cumulative metric buckets. The counts come from one
// pass over the buckets, so they are monotone and Count is their total.
func (h *histogram) latency() Latency {
	var l Latency
	var seen uint64
	next := 0
	for i := range h.b {
		seen += h.b[i].Load()
		// Bucket i ends a power-of-two group when its upper bound + 1 is
		// the next metric bound.
		if next < LatencyBuckets && histUpper(i)+1 == LatencyBoundUs(next) {
			l.Counts[next] = seen
			next++
		}
	}
	l.Count = seen
	l.SumNs = h.sum.Load()
	return l
}

// Percentile returns the q-quantile (0 < q <= 1) in microseconds, as the
// upper bound of the bucket that holds it; 0 when empty.
func (h *histogram) percentile(q float64) uint64 {
	var counts [histBuckets]uint64
	for i := range h.b {
		counts[i] = h.b[i].Load()
	}
	i := QuantileBucket(counts[:], q)
	if i < 0 {
		return 0
	}
	return histUpper(i)
}

// QuantileBucket returns the index of the bucket of a histogram's counts
// that holds the q-quantile (0 < q <= 1): the first bucket at which the
// running total reaches the rank q × total, rounded to the nearest and at
// least 1; the last bucket when rounding leaves the rank unreached. It
// returns -1 when every count is 0. It is the one percentile rule of
// fastcall's histograms, whatever their bucket bounds.
func QuantileBucket(counts []uint64, q float64) int {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return -1
	}
	rank := uint64(q*float64(total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return i
		}
	}
	return len(counts) - 1
}

// callStats are the counters of one call number on one side.
type callStats struct {
	calls   atomic.Uint64 // served (callee side) or made (caller side)
	errs    errCounters
	retrans atomic.Uint64 // caller side: retransmissions sent
	dups    atomic.Uint64 // callee side: duplicates absorbed
	lat     histogram     // handler time (callee) or round trip (caller)
}

// statTable maps call numbers to counters without locks: a two-level
// array whose pages are created on first use.
type statTable struct {
	pages [256]atomic.Pointer[[256]atomic.Pointer[callStats]]
}

func (t *statTable) get(callNo uint16) *callStats {
	pg := t.pages[callNo>>8].Load()
	if pg == nil {
		pg = new([256]atomic.Pointer[callStats])
		if !t.pages[callNo>>8].CompareAndSwap(nil, pg) {
			pg = t.pages[callNo>>8].Load()
		}
	}
	s := pg[callNo&0xff].Load()
	if s == nil {
		s = new(callStats)
		if !pg[callNo&0xff].CompareAndSwap(nil, s) {
			s = pg[callNo&0xff].Load()
		}
	}
	return s
}

// lookup returns the counters of callNo, nil if it has none yet.
func (t *statTable) lookup(callNo uint16) *callStats {
	pg := t.pages[callNo>>8].Load()
	if pg == nil {
		return nil
	}
	return pg[callNo&0xff].Load()
}

func (t *statTable) each(f func(callNo uint16, s *callStats)) {
	for i := range t.pages {
		pg := t.pages[i].Load()
		if pg == nil {
			continue
		}
		for j := range pg {
			if s := pg[j].Load(); s != nil {
				f(uint16(i<<8|j), s)
			}
		}
	}
}

// engineStats are the endpoint-wide counters.
type engineStats struct {
	rx, tx        atomic.Uint64
	sendErrs      atomic.Uint64
	readErrs      atomic.Uint64                  // socket reads that failed (other than on Close)
	drops         [wire.NumReasons]atomic.Uint64 // rejected by the decoder, by reason
	wrongDst      atomic.Uint64                  // addressed to another node id
	lateReplies   atomic.Uint64                  // reply to a call that already finished
	busy          atomic.Uint64                  // answered EBUSY (queue or cache full)
	expired       atomic.Uint64                  // dropped: the caller's deadline had passed
	stale         atomic.Uint64                  // refused ESTALE: below a duplicate-cache floor, or no incarnation of this process named
	tooOld        atomic.Uint64                  // dropped: stamp outside the age bound
	dupOther      atomic.Uint64                  // dropped: a cached request's key with other content
	dupAddr       atomic.Uint64                  // dropped: a copy of a cached request from another address than its original's
	peersFull     atomic.Uint64                  // refused EBUSY: non-idempotent request from a sender the full peer table does not track
	peersSwept    atomic.Uint64                  // idle peers removed from the table
	homesReleased atomic.Uint64                  // senders' homes released by a kept peer (sweepPeers)
	reflected     atomic.Uint64                  // dropped: a request of this endpoint's own, brought back to it (security.go)
	in, out       statTable
	peerDeaths    atomic.Uint64
	peerSuspects  atomic.Uint64
	// calls is the endpoint's call table: the served side keeps counters
	// only for registered numbers, every other number shares the bucket
	// of number 0 (UnknownCalls), so that a peer cannot grow the table.
	calls *atomic.Pointer[map[uint16]*callEntry]
}

// UnknownCalls is the call number under which the served-side counters
// of every unregistered call number are kept (no call is registered
// with number 0).
const UnknownCalls uint16 = 0

// unknownName is the name CallStats and Stats give the UnknownCalls
// bucket.
const unknownName = "unknown"

// statsName returns the name shown for call number no.
func statsName(no uint16, name string) string {
	if no == UnknownCalls && name == "" {
		return unknownName
	}
	return name
}

func (s *engineStats) callOut(callNo uint16) *callStats { return s.out.get(callNo) }

// callIn returns the served-side counters of callNo: its own once it is
// registered, the UnknownCalls bucket otherwise. Registered numbers pay
// the registration check only on their first request.
func (s *engineStats) callIn(callNo uint16) *callStats {
	if c := s.in.lookup(callNo); c != nil {
		return c
	}
	if s.calls != nil {
		if _, ok := (*s.calls.Load())[callNo]; !ok {
			callNo = UnknownCalls
		}
	}
	return s.in.get(callNo)
}

// CallCounters is a snapshot of one call number's counters.
type CallCounters struct {
	CallNo  uint16
	Name    string
	Calls   uint64
	Errors  map[wire.Errno]uint64 // non-zero error counts; EUSER stands for every handler-defined number
	Retrans uint64
	Dups    uint64
	P50us   uint64
	P99us   uint64
	P999us  uint64
	Latency Latency // handler time (served) or round trip (called)
}

// Stats is a snapshot of an endpoint's counters.
type Stats struct {
	Node        uint32
	Incarnation uint32
	Rx, Tx      uint64
	SendErrors  uint64
	Drops       map[string]uint64 // by reason name; also wrong-dst, late-reply, busy, expired, stale, too-old, dup-other, peers-full, peers-swept, read-errors, error-rate-limited, dup-evicted-early, reflected, dup-addr, homes-released
	Served      []CallCounters    // callee side, by registered call number; UnknownCalls counts all others
	Called      []CallCounters    // caller side, by call number
	Pending     int
	DupEntries  int
	Peers       int
	PeerDeaths  uint64 // peers declared dead (MarkDead)
	PeerSuspect uint64 // peers marked suspect after SuspectAfter timeouts in a row
}

// DropCount is one drop counter of the endpoint.
type DropCount struct {
	Reason string
	Count  uint64
}

// dropNames are the engine's own drop counters, after the decoder's
// reasons, in the order Drops lists them.
var dropNames = [...]string{"wrong-dst", "late-reply", "busy", "expired", "stale", "too-old", "dup-other",
	"peers-full", "peers-swept", "read-errors", "error-rate-limited", "dup-evicted-early", "reflected", "dup-addr", "homes-released"}

// Drops returns every drop counter, zero ones included, in a fixed order:
// the decoder's reasons in wire.Reason order, then dropNames. Stats.Drops
// holds the same counters, only the non-zero ones.
func (ep *Endpoint) Drops() []DropCount {
	s := &ep.stats
	out := make([]DropCount, 0, wire.NumReasons-1+len(dropNames))
	for r := 1; r < wire.NumReasons; r++ {
		out = append(out, DropCount{wire.Reason(r).String(), s.drops[r].Load()})
	}
	vals := [len(dropNames)]uint64{s.wrongDst.Load(), s.lateReplies.Load(), s.busy.Load(), s.expired.Load(), s.stale.Load(),
		s.tooOld.Load(), s.dupOther.Load(), s.peersFull.Load(), s.peersSwept.Load(), s.readErrs.Load(),
		ep.errLim.denied.Load(), ep.dup.earlyCount(), s.reflected.Load(), s.dupAddr.Load(), s.homesReleased.Load()}
	for i, name := range dropNames {
		out = append(out, DropCount{name, vals[i]})
	}
	return out
}

func snapshot(callNo uint16, name string, s *callStats) CallCounters {
	c := CallCounters{CallNo: callNo, Name: name, Calls: s.calls.Load(), Retrans: s.retrans.Load(), Dups: s.dups.Load(),
		P50us: s.lat.percentile(0.5), P99us: s.lat.percentile(0.99), P999us: s.lat.percentile(0.999), Latency: s.lat.latency()}
	for i := range s.errs {
		if v := s.errs[i].Load(); v != 0 && i != 0 {
			if c.Errors == nil {
				c.Errors = map[wire.Errno]uint64{}
			}
			e := wire.Errno(i)
			if i == errUserSlot {
				e = wire.EUSER
			}
			c.Errors[e] = v
		}
	}
	return c
}

// Stats returns a snapshot of the endpoint's counters.
func (ep *Endpoint) Stats() Stats {
	s := &ep.stats
	st := Stats{Node: ep.id, Incarnation: ep.Incarnation(), Rx: s.rx.Load(), Tx: s.tx.Load(), SendErrors: s.sendErrs.Load(),
		Drops: map[string]uint64{}}
	for _, d := range ep.Drops() {
		if d.Count != 0 {
			st.Drops[d.Reason] = d.Count
		}
	}
	s.in.each(func(no uint16, cs *callStats) {
		st.Served = append(st.Served, snapshot(no, statsName(no, ep.CallName(no)), cs))
	})
	s.out.each(func(no uint16, cs *callStats) { st.Called = append(st.Called, snapshot(no, ep.CallName(no), cs)) })
	st.Pending = ep.pending.inUse()
	st.DupEntries = ep.dup.len()
	st.Peers = ep.peers.size()
	st.PeerDeaths = s.peerDeaths.Load()
	st.PeerSuspect = s.peerSuspects.Load()
	return st
}
