package shm

import "bytes"

// The index: two buffers of slots (open addressing, linear probing on the
// key's xxhash), one active at a time (hdrIndexActOff). A slot is empty (0),
// a tombstone (1) or tag<<40 | nodeOffset>>4, where tag is the top 24 bits
// of the hash. Invariants at every instruction:
//
//   - every live slot names a node reachable at level 0 (insert links the
//     node before it fills the slot; delete clears the slot before it
//     unlinks the node);
//   - a node reachable at level 0 is missing from the index only while one
//     interrupted Put or Delete has not been repaired;
//   - the inactive buffer is never read; rebuilds fill it from level 0 and
//     then flip hdrIndexActOff with one store.

func (r *region) indexBase() uint64 {
	return r.indexOff + (load64(r.mem, hdrIndexActOff)&1)*r.slots*slotSize
}

// find returns the node holding key, whose hash is h.
func (r *region) find(key []byte, h uint64) (nodeView, bool) {
	base := r.indexBase()
	tag := h >> slotTagShift
	i := h & r.mask
	for n := uint64(0); n <= r.mask; n++ {
		s := load64(r.mem, base+i*slotSize)
		if s == slotEmpty {
			break
		}
		if s>>slotTagShift == tag && s != slotTomb {
			nv, ok := r.node((s & slotOffMask) << blockShift)
			if ok && load64(r.mem, nv.off+nodeHashOff) == h && bytes.Equal(r.key(nv), key) {
				return nv, true
			}
		}
		i = (i + 1) & r.mask
	}
	return nodeView{}, false
}

// findSlot is find for writers: it also returns the slot address holding
// the key and the first reusable (empty or tombstone) slot address on the
// probe path, 0 if the whole buffer was probed without one.
func (r *region) findSlot(key []byte, h uint64) (n nodeView, at, reuse uint64, found bool) {
	base := r.indexBase()
	tag := h >> slotTagShift
	i := h & r.mask
	for k := uint64(0); k <= r.mask; k++ {
		a := base + i*slotSize
		s := load64(r.mem, a)
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

// indexFull reports whether one more live slot would pass the load limit.
func (r *region) indexFull(extra uint64) bool {
	return (r.hdr(hdrIndexLiveOff)+r.hdr(hdrIndexTombsOff)+extra)*slotLoadDen > r.slots*slotLoadNum
}

// rebuildIndexLocked fills the inactive buffer from level 0 and flips it
// active. It returns false if level 0 cannot be walked or has more nodes
// than the index can hold.
func (r *region) rebuildIndexLocked() bool {
	other := (load64(r.mem, hdrIndexActOff) & 1) ^ 1
	base := r.indexOff + other*r.slots*slotSize
	clear(r.mem[base : base+r.slots*slotSize])
	live := uint64(0)
	for off := r.next(r.head(), 0); off != 0; live++ {
		if live >= r.maxNodes || (live+1)*slotLoadDen > r.slots*slotLoadNum {
			return false
		}
		x, ok := r.node(off)
		if !ok {
			return false
		}
		h := load64(r.mem, x.off+nodeHashOff)
		i := h & r.mask
		for load64(r.mem, base+i*slotSize) != slotEmpty {
			i = (i + 1) & r.mask
		}
		store64(r.mem, base+i*slotSize, slotWord(h, x.off))
		off = r.next(x, 0)
	}
	store64(r.mem, hdrIndexActOff, other)
	r.setHdr(hdrIndexLiveOff, live)
	r.setHdr(hdrIndexTombsOff, 0)
	return true
}
