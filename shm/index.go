package shm

import (
	"bytes"

	"fastcall/wire"
)

// The index: two buffers of slots (open addressing, linear probing on the
// key's keyHash), one active at a time (hdrIndexActOff). A slot is two
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
// lookup of View, of Get under the lock and of getSeq's fallback, kept
// short because its length decides how much of the next lookup the CPU
// overlaps with this one's cache misses. After
// the slot, the loads of the node (meta, key, valRef) and of the record
// named by the slot's ref word do not depend on each other, so the CPU
// fetches both at once: a hit waits for the slot and then for one more
// cache miss, not for the node and then the record. Every offset read from
// the file is checked against the arena before the unchecked loads of
// word.go use it. wire.ENOENT: absent; wire.EPROTO: the node's value
// reference is damaged.
func (r *region) getValue(key []byte, h uint64) ([]byte, wire.Errno) {
	mem := r.mem
	base := r.indexOff + (loadAt(mem, hdrIndexActOff)&1)*r.bufBytes
	tag := h >> slotTagShift
	klen := uint64(len(key))
	// A key shorter than a word is compared as one masked word; the node
	// side may be read a whole word long (its record header follows).
	kread, kword, kmask := klen, uint64(0), uint64(0)
	if klen < wordSize {
		kread = wordSize
		for j := uint64(0); j < klen; j++ {
			kword |= uint64(key[j]) << (8 * j)
		}
		kmask = uint64(1)<<(8*klen) - 1
	}
	i := h & r.mask
	for n := uint64(0); n <= r.mask; n, i = n+1, (i+1)&r.mask {
		a := base + i*slotSize
		s := loadAt(mem, a+slotNodeOff)
		if s == slotEmpty {
			break
		}
		node, level := slotNode(s), slotLevel(s)
		if s>>slotTagShift != tag || node < r.arenaOff || node > r.nodeLast {
			continue // another key, a tombstone (tag 0, node 16) or damage
		}
		// The record header is loaded before the node is looked at: it is
		// used only once the node has named the same record, but its cache
		// miss overlaps the node's.
		hint := loadAt(mem, a+slotRefOff)
		var rec uint64
		if hint >= r.arenaOff && hint <= r.recLast && hint%wordSize == 0 {
			rec = loadAt(mem, hint)
		} else {
			hint = 0
		}
		// The key's place comes from the slot, so the key, the meta word and
		// the record load at once. Same key, same level, and not hidden?
		meta := loadAt(mem, node+nodeMetaOff)
		koff := node + nodeKeyOff(level)
		if koff+kread > r.arenaEnd ||
			klen < wordSize && (loadAt(mem, koff)^kword)&kmask != 0 ||
			klen >= wordSize && !equalAt(mem, koff, key) ||
			meta&(metaKeyMask|metaLevelMask<<metaLevelShift|metaHidden) != klen|level<<metaLevelShift {
			continue
		}
		// The node's valRef is authoritative; the hint almost always agrees.
		ref := loadAt(mem, node+nodeValRefOff)
		if ref != hint {
			if ref < r.arenaOff || ref > r.recLast || ref%wordSize != 0 {
				return nil, wire.EPROTO
			}
			rec = loadAt(mem, ref)
		}
		l := rec & recLenMask
		if l > MaxValueLen || ref+recHdrSize+l > r.arenaEnd {
			return nil, wire.EPROTO
		}
		return bytesAt(mem, ref+recHdrSize, l), wire.OK
	}
	return nil, wire.ENOENT
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
			nv, ok := r.node(slotNode(s))
			if ok && load64(r.mem, nv.off+nodeHashOff) == h && bytes.Equal(r.key(nv), key) {
				return nv, a, reuse, true
			}
		}
		i = (i + 1) & r.mask
	}
	return nodeView{}, 0, reuse, false
}

// fillSlotLocked makes the empty or tombstone slot at a name node n (hash
// h) with value record ref: the ref word first, then the node word, whose
// store publishes the slot.
func (r *region) fillSlotLocked(a, h uint64, n nodeView, ref uint64) {
	store64(r.mem, a+slotRefOff, ref)
	store64(r.mem, a+slotNodeOff, slotWord(h, n.off, n.level))
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
		r.fillSlotLocked(base+i*slotSize, h, x, load64(r.mem, x.off+nodeValRefOff))
		live++
	}
	store64(r.mem, hdrIndexActOff, other)
	r.setHdr(hdrIndexLiveOff, live)
	r.setHdr(hdrIndexTombsOff, 0)
	return true
}
