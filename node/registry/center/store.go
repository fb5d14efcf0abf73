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

// store is a center's ordered map: a hash map for lookups and a sorted key
// slice for paging. Not safe for concurrent use: the center's mutex
// guards it. Inserting a new key costs a copy of the key slice, which
// bounds the store to Config.MaxKeys keys.
type store struct {
	m    map[string]*entry
	keys []string // sorted, every key of m
}

func newStore() *store { return &store{m: make(map[string]*entry)} }

func (s *store) get(k string) *entry { return s.m[k] }

func (s *store) len() int { return len(s.keys) }

// set stores e under k, adding k to the order if it is new.
func (s *store) set(k string, e *entry) {
	if _, ok := s.m[k]; !ok {
		i, _ := slices.BinarySearch(s.keys, k)
		s.keys = slices.Insert(s.keys, i, k)
	}
	s.m[k] = e
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
