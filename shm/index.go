package shm

import (
	"bytes"

	"fastcall/wire"
)

// The index: two buffers of slots (open addressing, linear probing on the
// key's keyHash), one active at a time (hdrIndexActOff). The active buffer
// uses a power of two of its slots, sized to the keys at its last rebuild:
// a map of 100,000 keys probes 256Ki slots (2 MiB) whatever the size of
// its file, so the slots it reads stay in the processor's cache as much as
// they can. Growing and shrinking are rebuilds. A slot is one word: empty
// (0), a tombstone (1) or tag<<40 | (level-1)<<36 | nodeOffset>>4, where
// tag is the top 24 bits of the hash. From the level and the key's length a
// reader knows where the node's key and inline value record lie, so it
// fetches the node and the record at the same time instead of one after
// the other (replaceLocked keeps a value inline whenever it fits).
// Invariants at every instruction:
//
//   - every live slot names a node reachable at level 0 (insert links the
//     node before it fills the slot; delete clears the slot before it
//     unlinks the node);
//   - every node reachable at level 0 that is not hidden (metaHidden) is
//     indexed: insert fills the slot before it clears the bit, delete sets
//     the bit before it clears the slot. A live slot may name a hidden node
//     (Get skips it) while one interrupted Put or Delete is not repaired;
//   - readers follow only the node's valRef: the inline record they load
//     early is used only when valRef names it;
//   - a node reachable at level 0 is missing from the index only if it is
//     hidden;
//   - the inactive buffer is never read; rebuilds fill it from level 0 and
//     then flip hdrIndexActOff with one store.

// activeIndex returns the active buffer's first slot and its probe mask.
func (r *region) activeIndex() (base, mask uint64) {
	return r.indexOf(load64(r.mem, hdrIndexActOff))
}

// indexOf decodes the active-index word w into the buffer's first slot and
// its probe mask. The mask is cut to the buffers' room, so a probe never
// leaves the buffer whatever the word holds (a damaged word, which Verify
// reports, can only misplace probes).
func (r *region) indexOf(w uint64) (base, mask uint64) {
	return r.indexOff + (w&1)*r.bufBytes, w >> idxMaskShift & r.mask
}

// slotsFor returns the slots a rebuild gives an index of n keys: the
// fewest, a power of two and at least minSlots, that keep the load at 1/2
// or less; at most the buffers' room.
func (r *region) slotsFor(n uint64) uint64 {
	s := uint64(minSlots)
	for s < r.slots && n*2 > s {
		s *= 2
	}
	return s
}

// getValue returns key's current value, lent from the mapping. It is the
// lookup of View, of Get under the lock and of getSeq's fallback, kept
// short because its length decides how much of the next lookup the CPU
// overlaps with this one's cache misses. After
// the slot, the loads of the node (meta, key, valRef) and of its inline
// record do not depend on each other, so the CPU fetches both at once: a
// hit waits for the slot and then for one more cache miss, not for the
// node and then the record. Every offset read from
// the file is checked against the arena before the unchecked loads of
// word.go use it. wire.ENOENT: absent; wire.EPROTO: the node's value
// reference is damaged.
func (r *region) getValue(key []byte, h uint64) ([]byte, wire.Errno) {
	mem := r.mem
	base, mask := r.indexOf(loadAt(mem, hdrIndexActOff))
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
	i := h & mask
	for n := uint64(0); n <= mask; n, i = n+1, (i+1)&mask {
		a := base + i*slotSize
		s := loadAt(mem, a+slotNodeOff)
		if s == slotEmpty {
			break
		}
		node, level := slotNode(s), slotLevel(s)
		if s>>slotTagShift != tag || node < r.arenaOff || node > r.nodeLast {
			continue // another key, a tombstone (tag 0, node 16) or damage
		}
		// The key's place and the inline record's come from the slot and
		// the key's length, so the key, the meta word and the record load
		// at once: the record header is used only once the node has named
		// it, but its cache miss overlaps the node's.
		koff := node + nodeKeyOff(level)
		hint := align(koff+klen, wordSize)
		early := hint <= r.recLast
		var rec uint64
		if early {
			rec = loadAt(mem, hint)
		}
		// Same key, same level, and not hidden?
		meta := loadAt(mem, node+nodeMetaOff)
		if koff+kread > r.arenaEnd ||
			klen < wordSize && (loadAt(mem, koff)^kword)&kmask != 0 ||
			klen >= wordSize && !equalAt(mem, koff, key) ||
			meta&(metaKeyMask|metaLevelMask<<metaLevelShift|metaHidden) != klen|level<<metaLevelShift {
			continue
		}
		// The node's valRef is authoritative; the inline record is the
		// common case (a value in a block of its own costs one more miss).
		ref := loadAt(mem, node+nodeValRefOff)
		if ref != hint || !early {
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
	base, mask := r.activeIndex()
	tag := h >> slotTagShift
	i := h & mask
	for k := uint64(0); k <= mask; k++ {
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
		i = (i + 1) & mask
	}
	return nodeView{}, 0, reuse, false
}

// fillSlotLocked makes the empty or tombstone slot at a name node n (hash
// h) with one store.
func (r *region) fillSlotLocked(a, h uint64, n nodeView) {
	store64(r.mem, a+slotNodeOff, slotWord(h, n.off, n.level))
}

// indexFull reports whether extra more live slots would pass the active
// buffer's load limit.
func (r *region) indexFull(extra uint64) bool {
	_, mask := r.activeIndex()
	return (r.hdr(hdrIndexLiveOff)+r.hdr(hdrIndexTombsOff)+extra)*slotLoadDen > (mask+1)*slotLoadNum
}

// rebuildIndexLocked fills the inactive buffer from the nodes at level 0
// that are not hidden and flips it active: sized (slotsFor) for them and
// extra more, which grows or shrinks the index, and drops its tombstones.
// It returns false if level 0 cannot be walked or has more nodes than the
// buffers can hold with extra more, or if the rebuild would change nothing
// (no tombstones, and the size the index has).
func (r *region) rebuildIndexLocked(extra uint64) bool {
	w := load64(r.mem, hdrIndexActOff)
	other := (w & 1) ^ 1
	base := r.indexOff + other*r.bufBytes
	_, cur := r.indexOf(w)
	slots := r.slotsFor(r.hdr(hdrIndexLiveOff) + extra)
	if slots == cur+1 && r.hdr(hdrIndexTombsOff) == 0 && extra > 0 {
		return false
	}
	for {
		live, ok, mask := uint64(0), true, slots-1
		clear(r.mem[base : base+slots*slotSize])
		for off, steps := r.next(r.head(), 0), uint64(0); off != 0; steps++ {
			x, xok := r.node(off)
			if !xok || steps >= r.maxNodes {
				return false
			}
			off = r.next(x, 0)
			if x.hidden {
				continue
			}
			if (live+1+extra)*slotLoadDen > slots*slotLoadNum {
				// The header's count was short (a repair): size again.
				ok = false
				break
			}
			h := load64(r.mem, x.off+nodeHashOff)
			i := h & mask
			for load64(r.mem, base+i*slotSize+slotNodeOff) != slotEmpty {
				i = (i + 1) & mask
			}
			r.fillSlotLocked(base+i*slotSize, h, x)
			live++
		}
		if !ok {
			if slots >= r.slots {
				return false
			}
			slots *= 2
			continue
		}
		store64(r.mem, hdrIndexActOff, other|mask<<idxMaskShift)
		r.setHdr(hdrIndexLiveOff, live)
		r.setHdr(hdrIndexTombsOff, 0)
		return true
	}
}
