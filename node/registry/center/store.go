package center

import (
	"slices"
	"strings"
	"time"

	"fastcall/node/registry/sdk"
)

// entry is one key of a center's store: its current record (live or a
// tombstone) and the bookkeeping that is not part of the record.
// Records are immutable once stored; replacing an entry replaces the
// slice.
type entry struct {
	rec     []byte // encoded record (sdk format)
	version uint64
	epoch   uint64   // the record's epoch: (version, epoch) is its sdk.Stamp
	op      sdk.OpID // the client operation that made the record (zero: none)
	kind    uint8
	// expireMs is, on the wall clock (Clock.WallMs), for a KV entry its
	// absolute expiry from the record (0: none); for a tombstone, when it
	// may be purged.
	expireMs int64
	// leaseDue is, for a service instance, its lease deadline on the
	// monotonic clock (Clock.MonoNs): kept in memory only, pushed back by
	// renewals, and so never moved by a step of the wall clock.
	leaseDue int64
	leaseMs  int64  // services: lease duration
	owner    string // services: registering endpoint address
}

// due reports whether e is past its TTL (KV entries), its lease (service
// instances, on the monotonic clock monoNs) or its age (tombstones), at
// wall time nowMs.
func (e *entry) due(nowMs, monoNs int64) bool {
	if e.kind == sdk.KindService {
		return e.leaseDue <= monoNs
	}
	return e.expireMs != 0 && e.expireMs <= nowMs
}

func (e *entry) stamp() sdk.Stamp { return sdk.Stamp{Version: e.version, Epoch: e.epoch} }

// live reports whether e is a present, unexpired entry at wall time nowMs.
func (e *entry) live(nowMs int64) bool {
	if e == nil || e.kind == sdk.KindTombstone {
		return false
	}
	return e.kind != sdk.KindKV || e.expireMs == 0 || e.expireMs > nowMs
}

// store is a center's ordered map: a hash map for lookups, a sorted key
// slice for paging, and the deadlines of its entries in two min-heaps
// (wall clock: KV expiries and tombstone purges; monotonic clock:
// service leases), so that the expiry sweep looks at the entries that
// came due, not at every key. Not safe for concurrent use: the center's
// mutex guards it. Inserting a new key costs a copy of the key slice,
// which bounds the store to Config.MaxKeys keys.
type store struct {
	m    map[string]*entry
	keys []string // sorted, every key of m
	// wall and mono hold a deadline per entry stored (set). An item
	// whose entry was replaced or removed since is stale and is dropped
	// when it comes due; a lease renewed in place (leaseDue moved on) is
	// pushed again at its new deadline then (takeDue).
	wall, mono dueHeap
	rebuilds   uint64 // times retrack rebuilt the heaps
}

// dueItem is the deadline at of entry e stored under k.
type dueItem struct {
	at int64
	k  string
	e  *entry
}

// dueHeap is a min-heap of deadlines.
type dueHeap []dueItem

func (h *dueHeap) push(it dueItem) {
	*h = append(*h, it)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p].at <= a[i].at {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *dueHeap) pop() dueItem {
	a := *h
	it := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a[n] = dueItem{}
	a = a[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a[r].at < a[l].at {
			m = r
		}
		if a[i].at <= a[m].at {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return it
}

// dueSlack is how many items the two heaps may hold beyond one per
// stored key before set rebuilds them from the map: items of replaced
// entries wait in a heap until their deadline, which a TTL of hours puts
// far off while the key is written again and again.
const dueSlack = 1024

func newStore() *store { return &store{m: make(map[string]*entry)} }

// track pushes e's deadline, if it has one, into its heap.
func (s *store) track(k string, e *entry) {
	switch {
	case e.kind == sdk.KindService:
		s.mono.push(dueItem{e.leaseDue, k, e})
	case e.expireMs != 0:
		s.wall.push(dueItem{e.expireMs, k, e})
	}
}

// retrack rebuilds both heaps from the map (stale items gone).
func (s *store) retrack() {
	s.rebuilds++
	s.wall, s.mono = s.wall[:0], s.mono[:0]
	for _, k := range s.keys {
		s.track(k, s.m[k])
	}
}

// takeDue calls fn with each stored entry due at wall time nowMs and
// monotonic time monoNs (entry.due), and takes it off the heaps: fn
// either replaces or removes it, or hands it back with handBack (the
// expiry sweep does when its write failed). An entry found not due (a
// lease renewed since its item was pushed) is pushed again at its
// deadline.
func (s *store) takeDue(nowMs, monoNs int64, fn func(k string, e *entry)) {
	for _, h := range [2]struct {
		heap *dueHeap
		now  int64
	}{{&s.wall, nowMs}, {&s.mono, monoNs}} {
		var later []dueItem
		for len(*h.heap) > 0 && (*h.heap)[0].at <= h.now {
			it := h.heap.pop()
			if s.m[it.k] != it.e {
				continue // replaced or removed since
			}
			if !it.e.due(nowMs, monoNs) {
				later = append(later, it)
				continue
			}
			fn(it.k, it.e)
		}
		for _, it := range later {
			s.track(it.k, it.e)
		}
	}
}

// handBack tracks again entry e of key k, which takeDue handed over when
// the heaps had been rebuilt taken times (rebuilds), and whose expiry
// failed: unless it was replaced or removed since, or the heaps were
// rebuilt since, from the map that held it (an expiry's write runs
// without the center's lock, while other keys' writes may rebuild
// them), which tracked it already: a second item would hand it over
// twice at each sweep from then on.
func (s *store) handBack(k string, e *entry, taken uint64) {
	if s.m[k] == e && s.rebuilds == taken {
		s.track(k, e)
	}
}

func (s *store) get(k string) *entry { return s.m[k] }

func (s *store) len() int { return len(s.keys) }

// set stores e under k, adding k to the order if it is new.
func (s *store) set(k string, e *entry) {
	if _, ok := s.m[k]; !ok {
		i, _ := slices.BinarySearch(s.keys, k)
		s.keys = slices.Insert(s.keys, i, k)
	}
	s.m[k] = e
	if len(s.wall)+len(s.mono) > len(s.keys)+dueSlack {
		s.retrack() // e is in the map: tracked there
		return
	}
	s.track(k, e)
}

// remove forgets k entirely (tombstone purge).
func (s *store) remove(k string) {
	if _, ok := s.m[k]; !ok {
		return
	}
	delete(s.m, k)
	if i, ok := slices.BinarySearch(s.keys, k); ok {
		s.keys = slices.Delete(s.keys, i, i+1)
	}
}

// after returns the index of the first key strictly after k ("" : 0).
func (s *store) after(k string) int {
	i, found := slices.BinarySearch(s.keys, k)
	if found {
		i++
	}
	return i
}

// scan calls fn for keys starting with prefix, strictly after from, in
// order, until fn returns false.
func (s *store) scan(prefix, from string, fn func(k string, e *entry) bool) {
	var i int
	if from < prefix {
		i, _ = slices.BinarySearch(s.keys, prefix) // first key >= prefix
	} else {
		i = s.after(from)
	}
	for ; i < len(s.keys); i++ {
		k := s.keys[i]
		if !strings.HasPrefix(k, prefix) {
			return
		}
		if !fn(k, s.m[k]) {
			return
		}
	}
}

// entryFromRecord builds the store entry for an encoded record, with a
// service's lease deadline starting at monoNs (monotonic clock) and a
// tombstone's purge time tombAgeMs after its deletion (the record's
// modified time, wall clock), wherever and whenever the tombstone is
// taken: by the write, a replica, anti-entropy or recovery.
func entryFromRecord(rec []byte, monoNs, tombAgeMs int64) (*entry, bool) {
	var r sdk.Record
	if sdk.ParseRecord(rec, &r) != 0 {
		return nil, false
	}
	e := &entry{rec: rec, version: r.Version, epoch: r.Epoch, op: r.Op, kind: r.Kind}
	switch r.Kind {
	case sdk.KindKV:
		e.expireMs = r.ExpireMs
	case sdk.KindService:
		e.leaseMs = int64(r.LeaseMs)
		e.leaseDue = monoNs + e.leaseMs*int64(time.Millisecond)
		e.owner = string(r.Owner)
	case sdk.KindTombstone:
		e.expireMs = r.ModifiedMs + tombAgeMs
	}
	return e, true
}
