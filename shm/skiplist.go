package shm

import "bytes"

// The skiplist: nodes in the arena linked by absolute offsets, ordered by
// the byte order of their keys, with a head node of maxLevel links at
// headOff. Invariants, kept at every instruction of every write path:
//
//   - every level is sorted by key, and every node reachable at level i is
//     reachable at level 0 and has level > i (levels are sublists);
//   - every node reachable at level 0 is completely written (key, hash,
//     value record) and its valRef names a completely written record;
//   - insert links level 0 first and then upward; delete unlinks from the
//     top down, level 0 last. A crash can therefore leave a node whose
//     tower is incomplete, which search tolerates and Repair completes;
//   - a node is part of the map only while its metaHidden bit is clear.
//     Insert links and indexes the node hidden and commits by clearing the
//     bit; delete commits by setting it, then unlinks. Readers (Get through
//     the index, Range along level 0) skip hidden nodes, so both see an
//     interrupted write the same way, and Repair unlinks hidden nodes, so
//     what readers saw before a repair is what they see after it. Searches
//     for order (seek) still step through hidden nodes: their keys are in
//     order like any other.
//
// Readers trust nothing: node() checks every offset before use and every
// walk is bounded by maxNodes steps per level.

// nodeView is a validated node: its offsets lie inside the arena.
type nodeView struct {
	off    uint64 // block offset
	level  uint64
	keyOff uint64 // absolute
	keyLen uint64
	icap   uint64 // inline value capacity
	hidden bool   // metaHidden: linked but not part of the map
}

func (n nodeView) recOff() uint64 { return n.off + nodeRecOff(n.level, n.keyLen) }

// node validates off as a node (or the head) and returns its view. The
// inline record's header must fit in the arena even with no capacity:
// replaceLocked writes it for an empty value.
func (r *region) node(off uint64) (nodeView, bool) {
	if off < r.arenaOff || off%blockAlign != 0 || off > r.arenaEnd-nodeNextOff {
		return nodeView{}, false
	}
	meta := load64(r.mem, off+nodeMetaOff)
	n := nodeView{
		off:    off,
		level:  meta >> metaLevelShift & metaLevelMask,
		keyLen: meta & metaKeyMask,
		icap:   meta >> metaCapShift,
		hidden: meta&metaHidden != 0,
	}
	if n.level == 0 || n.level > maxLevel || n.keyLen > MaxKeyLen || n.icap > MaxValueLen {
		return nodeView{}, false
	}
	n.keyOff = off + nodeKeyOff(n.level)
	if n.keyOff+n.keyLen > r.arenaEnd || n.recOff()+recHdrSize+n.icap > r.arenaEnd {
		return nodeView{}, false
	}
	return n, true
}

func (r *region) key(n nodeView) []byte { return r.mem[n.keyOff : n.keyOff+n.keyLen] }

// setHidden stores n's meta word with metaHidden set or clear: the commit
// of a delete or of an insert.
func (r *region) setHidden(n nodeView, hidden bool) {
	meta := nodeMeta(n.keyLen, n.level, n.icap)
	if hidden {
		meta |= metaHidden
	}
	store64(r.mem, n.off+nodeMetaOff, meta)
}

// next returns the level-i successor of n (i < n.level); 0 is the end.
func (r *region) next(n nodeView, i uint64) uint64 {
	return load64(r.mem, n.off+nodeNextOff+i*wordSize)
}

func (r *region) setNext(n nodeView, i, to uint64) {
	store64(r.mem, n.off+nodeNextOff+i*wordSize, to)
}

func (r *region) head() nodeView {
	return nodeView{off: r.headOff, level: maxLevel, keyOff: r.headOff + nodeKeyOff(maxLevel)}
}

// record validates the value record at ref and returns its data bounds.
func (r *region) record(ref uint64) (data, n uint64, ok bool) {
	if ref < r.arenaOff || ref%wordSize != 0 || ref > r.arenaEnd-recHdrSize {
		return 0, 0, false
	}
	n = load64(r.mem, ref) & recLenMask
	if n > MaxValueLen || ref+recHdrSize+n > r.arenaEnd {
		return 0, 0, false
	}
	return ref + recHdrSize, n, true
}

// value returns the bytes of n's current value.
func (r *region) value(n nodeView) ([]byte, bool) {
	d, l, ok := r.record(load64(r.mem, n.off+nodeValRefOff))
	if !ok {
		return nil, false
	}
	return r.mem[d : d+l], true
}

// seek returns the first node with key >= key (ok with off 0 if none). If
// preds is not nil it receives, per level, the last node with key < key.
// The walk is bounded; a structure that cannot be walked gives ok false.
func (r *region) seek(key []byte, preds *[maxLevel]nodeView) (nodeView, bool) {
	x := r.head()
	budget := r.maxNodes * maxLevel
	var cand nodeView
	for i := int(maxLevel) - 1; i >= 0; i-- {
		for {
			nx := r.next(x, uint64(i))
			if nx == 0 {
				cand = nodeView{}
				break
			}
			n, ok := r.node(nx)
			if !ok || n.level <= uint64(i) || budget == 0 {
				return nodeView{}, false
			}
			budget--
			if bytes.Compare(r.key(n), key) >= 0 {
				cand = n
				break
			}
			x = n
		}
		if preds != nil {
			preds[i] = x
		}
	}
	return cand, true
}

// randomLevelLocked draws a level with P(level > k) = 4^-k.
func (r *region) randomLevelLocked() uint64 {
	x := r.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	r.rng = x
	lvl := uint64(1)
	for x&(1<<levelBits-1) == 0 && lvl < maxLevel {
		lvl++
		x >>= levelBits
	}
	return lvl
}
