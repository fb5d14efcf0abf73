package shm

import (
	"bytes"

	"fastcall/wire"
)

// The index: two buffers of slots (open addressing, linear probing on the
// key's xxhash), one active at a time (hdrIndexActOff). A slot is two
// words. The node word is empty (0), a tombstone (1) or tag<<40 |
// nodeOffset>>4, where tag is the top 24 bits of the hash; the ref word
// holds a copy of that node's valRef, so that a reader can fetch the node
// and the value record at the same time instead of one after the other.
// Invariants at every instruction:
//
//   - every live slot names a node reachable at level 0 (insert links the
//     node before it fills the slot; delete clears the slot before it
//     unlinks the node);
//   - every node reachable at level 0 that is not hidden (metaHidden) is
//     indexed: insert fills the slot before it clears the bit, delete sets
//     the bit before it clears the slot. A live slot may name a hidden node
//     (Get skips it) while one interrupted Put or Delete is not repaired;
//   - the ref word of a live slot names a complete record that has not been
//     freed: its node's current record, or (after an interrupted replace,
//     until repair) its node's previous one. Writers fill the ref word
//     before the node word, publish a new record in the node before the
//     slot, and free the old record only after both name the new one;
//   - readers follow only the node's valRef: the ref word is a hint that
//     Get checks against it;
//   - a node reachable at level 0 is missing from the index only if it is
//     hidden;
//   - the inactive buffer is never read; rebuilds fill it from level 0 and
//     then flip hdrIndexActOff with one store.

func (r *region) indexBase() uint64 {
	return r.indexOff + (load64(r.mem, hdrIndexActOff)&1)*r.bufBytes
}

// getValue returns key's current value, lent from the mapping. It is the
// hit path of Get and View. After the slot, the loads of the node (meta,
// key, valRef) and of the record named by the slot's ref word do not depend
// on each other, so the CPU fetches both at once: a hit waits for the slot
// and then for one more cache miss, not for the node and then the record.
// wire.ENOENT: absent; wire.EPROTO: the node's value reference is damaged.
func (r *region) getValue(key []byte, h uint64) ([]byte, wire.Errno) {
	mem := r.mem
	base := r.indexBase()
	tag := h >> slotTagShift
	i := h & r.mask
	for n := uint64(0); n <= r.mask; n++ {
		a := base + i*slotSize
		s := load64(mem, a+slotNodeOff)
		if s == slotEmpty {
			break
		}
		if s>>slotTagShift == tag && s != slotTomb {
			if v, e := r.matchSlot(key, s, load64(mem, a+slotRefOff)); e != wire.ENOENT {
				return v, e
			}
		}
		i = (i + 1) & r.mask
	}
	return nil, wire.ENOENT
}

// matchSlot checks whether the node named by the slot word s holds key and
// returns its value; hint is the slot's ref word. wire.ENOENT: another key
// (or a node too damaged to hold one).
func (r *region) matchSlot(key []byte, s, hint uint64) ([]byte, wire.Errno) {
	mem := r.mem
	node := (s & slotOffMask) << blockShift
	if node < r.arenaOff || node > r.nodeLast {
		return nil, wire.ENOENT
	}
	klen := uint64(len(key))
	// The record header is loaded before the node is looked at: its value
	// is used only once the node has named the same record, but its cache
	// miss overlaps the node's.
	hintOK := hint >= r.arenaOff && hint <= r.recLast && hint%wordSize == 0
	var rec uint64
	if hintOK {
		rec = load64(mem, hint)
	}
	meta := load64(mem, node+nodeMetaOff)
	// Wait for the node: same key, and not hidden?
	level := meta >> metaLevelShift & metaLevelMask
	if meta&(metaKeyMask|metaHidden) != klen || level == 0 || level > maxLevel {
		return nil, wire.ENOENT
	}
	koff := node + nodeKeyOff(level)
	if koff+klen > r.arenaEnd || string(mem[koff:koff+klen]) != string(key) {
		return nil, wire.ENOENT
	}
	// The node's valRef is authoritative; the hint almost always agrees.
	ref := load64(mem, node+nodeValRefOff)
	if ref != hint || !hintOK {
		if ref < r.arenaOff || ref > r.recLast || ref%wordSize != 0 {
			return nil, wire.EPROTO
		}
		rec = load64(mem, ref)
	}
	l := rec & recLenMask
	if l > MaxValueLen || ref+recHdrSize+l > r.arenaEnd {
		return nil, wire.EPROTO
	}
	return mem[ref+recHdrSize : ref+recHdrSize+l], wire.OK
}

// find returns the node holding key, whose hash is h.
func (r *region) find(key []byte, h uint64) (nodeView, bool) {
	n, _, _, found := r.findSlot(key, h)
	return n, found
}

// findSlot returns the node holding key (whose hash is h), the address of
// the slot naming it and the first reusable (empty or tombstone) slot
// address on the probe path, 0 if the whole buffer was probed without one.
func (r *region) findSlot(key []byte, h uint64) (n nodeView, at, reuse uint64, found bool) {
	base := r.indexBase()
	tag := h >> slotTagShift
	i := h & r.mask
	for k := uint64(0); k <= r.mask; k++ {
		a := base + i*slotSize
		s := load64(r.mem, a+slotNodeOff)
		if s == slotEmpty {
			if reuse == 0 {
				reuse = a
			}
			break
		}
		if s == slotTomb {
			if reuse == 0 {
				reuse = a
			}
		} else if s>>slotTagShift == tag {
			nv, ok := r.node((s & slotOffMask) << blockShift)
			if ok && load64(r.mem, nv.off+nodeHashOff) == h && bytes.Equal(r.key(nv), key) {
				return nv, a, reuse, true
			}
		}
		i = (i + 1) & r.mask
	}
	return nodeView{}, 0, reuse, false
}

// fillSlotLocked makes the empty or tombstone slot at a name node (hash h)
// with value record ref: the ref word first, then the node word, whose
// store publishes the slot.
func (r *region) fillSlotLocked(a, h, node, ref uint64) {
	store64(r.mem, a+slotRefOff, ref)
	store64(r.mem, a+slotNodeOff, slotWord(h, node))
}

// indexFull reports whether one more live slot would pass the load limit.
func (r *region) indexFull(extra uint64) bool {
	return (r.hdr(hdrIndexLiveOff)+r.hdr(hdrIndexTombsOff)+extra)*slotLoadDen > r.slots*slotLoadNum
}

// rebuildIndexLocked fills the inactive buffer from the nodes at level 0
// that are not hidden and flips it active. It returns false if level 0
// cannot be walked or has more nodes than the index can hold.
func (r *region) rebuildIndexLocked() bool {
	other := (load64(r.mem, hdrIndexActOff) & 1) ^ 1
	base := r.indexOff + other*r.bufBytes
	clear(r.mem[base : base+r.bufBytes])
	live := uint64(0)
	for off, steps := r.next(r.head(), 0), uint64(0); off != 0; steps++ {
		x, ok := r.node(off)
		if !ok || steps >= r.maxNodes {
			return false
		}
		off = r.next(x, 0)
		if x.hidden {
			continue
		}
		if (live+1)*slotLoadDen > r.slots*slotLoadNum {
			return false
		}
		h := load64(r.mem, x.off+nodeHashOff)
		i := h & r.mask
		for load64(r.mem, base+i*slotSize+slotNodeOff) != slotEmpty {
			i = (i + 1) & r.mask
		}
		r.fillSlotLocked(base+i*slotSize, h, x.off, load64(r.mem, x.off+nodeValRefOff))
		live++
	}
	store64(r.mem, hdrIndexActOff, other)
	r.setHdr(hdrIndexLiveOff, live)
	r.setHdr(hdrIndexTombsOff, 0)
	return true
}
