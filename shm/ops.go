package shm

import (
	"bytes"

	"fastcall/wire"

	"github.com/cespare/xxhash/v2"
)

// The point and range operations over one region. Read methods need the
// shared lock, methods ending in Locked the exclusive lock. Every method
// returns an error number and never panics on a damaged file.

// getInto copies key's value (h is the key's hash) into dst and returns its
// length. A dst too short gives wire.EMSGSIZE and the length needed.
func (r *region) getInto(key, dst []byte, h uint64) (int, error) {
	v, e := r.getValue(key, h)
	if e != wire.OK {
		return 0, e
	}
	if len(v) > len(dst) {
		return len(v), wire.EMSGSIZE
	}
	return copy(dst, v), nil
}

// lookup returns a view of key's value inside the mapping.
func (r *region) lookup(key []byte) ([]byte, error) {
	v, e := r.getValue(key, keyHash(key))
	if e != wire.OK {
		return nil, e
	}
	return v, nil
}

// scan calls fn for each key in [from, to) in order (to nil: no upper
// bound; prefix true: keys that start with from) until fn returns false.
func (r *region) scan(from, to []byte, prefix bool, fn func(k, v []byte) bool) error {
	x, ok := r.seek(from, nil)
	for steps := uint64(0); ; steps++ {
		if !ok || steps > r.maxNodes {
			return wire.EPROTO
		}
		if x.off == 0 {
			return nil
		}
		k := r.key(x)
		if prefix && !bytes.HasPrefix(k, from) || !prefix && to != nil && bytes.Compare(k, to) >= 0 {
			return nil
		}
		if !x.hidden {
			v, vok := r.value(x)
			if !vok {
				return wire.EPROTO
			}
			if !fn(k, v) {
				return nil
			}
		}
		nx := r.next(x, 0)
		if nx == 0 {
			return nil
		}
		x, ok = r.node(nx)
	}
}

// writeRecord fills the value record at ref with val (not yet published).
func (r *region) writeRecord(ref uint64, val []byte) {
	copy(r.mem[ref+recHdrSize:], val)
	sum := uint64(uint32(xxhash.Sum64(val)))
	store64(r.mem, ref, uint64(len(val))|sum<<recSumShift)
}

func checkKV(key, val []byte) error {
	if len(key) == 0 || len(key) > MaxKeyLen || len(val) > MaxValueLen {
		return wire.EINVAL
	}
	return nil
}

// putLocked inserts key or replaces its value. On any error the map is as
// it was.
func (r *region) putLocked(key, val []byte) error {
	if err := checkKV(key, val); err != nil {
		return err
	}
	h := keyHash(key)
	n, _, reuse, found := r.findSlot(key, h)
	if found {
		if n.hidden {
			// Only after an unrepaired crash.
			return wire.EPROTO
		}
		return r.replaceLocked(n, val)
	}
	if reuse == 0 || r.indexFull(1) {
		if !r.rebuildIndexLocked(1) {
			return wire.ENOSPC
		}
		if _, _, reuse, _ = r.findSlot(key, h); reuse == 0 || r.indexFull(1) {
			return wire.ENOSPC
		}
	}
	var preds [maxLevel]nodeView
	succ, ok := r.seek(key, &preds)
	if !ok {
		return wire.EPROTO
	}
	if succ.off != 0 && bytes.Equal(r.key(succ), key) {
		// A hidden node of this key: only after an unrepaired crash.
		return wire.EPROTO
	}
	level := r.randomLevelLocked()
	recRel := nodeRecOff(level, uint64(len(key)))
	off, err := r.allocLocked(recRel+recHdrSize+uint64(len(val)), kindNode)
	if err != nil {
		return err
	}
	icap := blockSize(load64(r.mem, off)) - recRel - recHdrSize
	if icap > MaxValueLen {
		icap = MaxValueLen
	}
	nv := nodeView{off: off, level: level, keyLen: uint64(len(key)), icap: icap}
	store64(r.mem, off+nodeHashOff, h)
	r.setHidden(nv, true)
	copy(r.mem[off+nodeKeyOff(level):], key)
	r.writeRecord(off+recRel, val)
	store64(r.mem, off+nodeValRefOff, off+recRel)
	for i := uint64(0); i < level; i++ {
		r.setNext(nv, i, r.next(preds[i], i))
	}
	// Link the hidden node from level 0 up, index it, then commit: the
	// store that clears metaHidden makes the key visible to Get and Range
	// at once.
	for i := uint64(0); i < level; i++ {
		r.setNext(preds[i], i, off)
	}
	if load64(r.mem, reuse+slotNodeOff) == slotTomb {
		r.addHdr(hdrIndexTombsOff, -1)
	}
	r.fillSlotLocked(reuse, h, nv)
	r.addHdr(hdrIndexLiveOff, 1)
	r.setHidden(nv, false)
	r.addHdr(hdrNodesOff, 1)
	r.addHdr(hdrWritesOff, 1)
	return nil
}

// replaceLocked gives node n the value val. A new record is written where
// no reader looks, then published by one store of the node's valRef (the
// commit); the block of the record it replaced is freed after. A value that
// fits the node's inline space ends up there, where Get finds it without
// following valRef: when the inline record is the current one, the new
// value is first committed in a value block of its own, then written inline
// and committed again, and the block freed. A crash between the two
// commits leaves the new value in its block, which Get follows.
func (r *region) replaceLocked(n nodeView, val []byte) error {
	inline := n.recOff()
	cur := load64(r.mem, n.off+nodeValRefOff)
	fits := uint64(len(val)) <= n.icap
	if cur == inline || !fits {
		blk, err := r.allocLocked(valueRecOff+recHdrSize+uint64(len(val)), kindValue)
		if err != nil {
			return err
		}
		ext := blk + valueRecOff
		r.writeRecord(ext, val)
		store64(r.mem, n.off+nodeValRefOff, ext)
		if cur != inline {
			r.freeLocked(cur - valueRecOff)
		}
		cur = ext
	}
	if fits {
		r.writeRecord(inline, val)
		store64(r.mem, n.off+nodeValRefOff, inline)
		r.freeLocked(cur - valueRecOff)
	}
	r.addHdr(hdrWritesOff, 1)
	return nil
}

// deleteLocked removes key: the node is hidden first (the commit), then its
// index slot becomes a tombstone, then the tower is unlinked from the top,
// level 0 last, and the blocks go back to the allocator.
func (r *region) deleteLocked(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return wire.EINVAL
	}
	h := keyHash(key)
	n, at, _, found := r.findSlot(key, h)
	if !found {
		return wire.ENOENT
	}
	if n.hidden {
		// Only after an unrepaired crash.
		return wire.EPROTO
	}
	var preds [maxLevel]nodeView
	if _, ok := r.seek(key, &preds); !ok {
		return wire.EPROTO
	}
	r.setHidden(n, true)
	r.addHdr(hdrNodesOff, -1)
	store64(r.mem, at+slotNodeOff, slotTomb)
	r.addHdr(hdrIndexLiveOff, -1)
	r.addHdr(hdrIndexTombsOff, 1)
	for i := int(n.level) - 1; i >= 0; i-- {
		if r.next(preds[i], uint64(i)) == n.off {
			r.setNext(preds[i], uint64(i), r.next(n, uint64(i)))
		}
	}
	if cur := load64(r.mem, n.off+nodeValRefOff); cur != n.recOff() {
		r.freeLocked(cur - valueRecOff)
	}
	r.freeLocked(n.off)
	r.addHdr(hdrWritesOff, 1)
	if _, mask := r.activeIndex(); r.hdr(hdrIndexTombsOff)*slotLoadDen > mask+1 {
		r.rebuildIndexLocked(0)
	}
	return nil
}
