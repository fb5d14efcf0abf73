package shm

import "fastcall/wire"

// The arena allocator: segregated free lists by size class, carving from a
// bump pointer (hdrBumpOff), splitting larger free blocks when a class and
// the bump are both exhausted, and merging adjacent free blocks (coalesce)
// before giving up with ENOSPC. There is no coalescing on free.
//
// Invariants at every instruction:
//   - the blocks from arenaOff to the bump pointer tile the arena: each
//     header's size leads to the next header (a walk never sees a header
//     that is not published: a new header is written before the word that
//     makes it part of the walk — the bump pointer, or the shrunk size of
//     the block it was split from);
//   - a block is on a free list only if its kind is kindFree; a reachable
//     node or value block is never kindFree (kinds change to free only
//     after the block was unlinked);
//   - a crash can leave a kindFree block on no list, or an allocated block
//     reachable from nothing (at most crashLeaks of them); both only waste
//     space until Repair.
//
// All methods need the exclusive lock.

// freeHead is the header address of class c's list head.
func freeHead(c int) uint64 { return hdrFreeHeadsOff + uint64(c)*wordSize }

// blockAt validates a block offset below the bump pointer and returns its
// size. The bump pointer is read from the file: a damaged one is cut to the
// arena's end, so that no offset it admits lies outside the mapping.
func (r *region) blockAt(off uint64) (uint64, uint64, bool) {
	top := min(r.hdr(hdrBumpOff), r.arenaEnd)
	if off < r.arenaOff || off%blockAlign != 0 || off >= top {
		return 0, 0, false
	}
	w := load64(r.mem, off)
	sz := blockSize(w)
	if !blockOK(w) || sz < minBlock || sz%blockAlign != 0 || off+sz > top {
		return 0, 0, false
	}
	return sz, blockKind(w), true
}

// popLocked takes the first block of list c, or returns 0.
func (r *region) popLocked(c int) uint64 {
	off := r.hdr(freeHead(c))
	if off == 0 {
		return 0
	}
	sz, kind, ok := r.blockAt(off)
	if !ok || kind != kindFree || sz < classSize[c] {
		// A damaged list: drop it. Repair rebuilds the lists.
		r.setHdr(freeHead(c), 0)
		return 0
	}
	r.setHdr(freeHead(c), load64(r.mem, off+freeNextOff))
	r.addHdr(hdrFreeBytesOff, -int64(sz))
	return off
}

// pushLocked marks the unreachable block off of size sz free and lists it.
func (r *region) pushLocked(off, sz uint64) {
	c := classFloor(sz)
	store64(r.mem, off, blockWord(sz, kindFree))
	store64(r.mem, off+freeNextOff, r.hdr(freeHead(c)))
	r.setHdr(freeHead(c), off)
	r.addHdr(hdrFreeBytesOff, int64(sz))
}

// allocLocked returns a block of at least n bytes whose header says kind.
// The block's contents other than the header are not cleared. On ENOSPC
// nothing in the mapping has changed except, possibly, a coalesce. A
// damaged bump pointer (bumpOK) is EPROTO, with nothing changed: carving
// there would write outside the arena, into the lock or the index, or
// past the mapping.
func (r *region) allocLocked(n, kind uint64) (uint64, error) {
	c := classCeil(n)
	if c < 0 {
		return 0, wire.EINVAL
	}
	want := classSize[c]
	for attempt := 0; attempt < 2; attempt++ {
		if !r.bumpOK(r.hdr(hdrBumpOff)) {
			return 0, r.corrupt(hdrBumpOff, "bad arena top")
		}
		if off := r.popLocked(c); off != 0 {
			sz := blockSize(load64(r.mem, off))
			store64(r.mem, off, blockWord(sz, kind))
			r.addHdr(hdrUsedOff, int64(sz))
			return off, nil
		}
		if top := r.hdr(hdrBumpOff); top+want <= r.arenaEnd {
			store64(r.mem, top, blockWord(want, kind))
			r.setHdr(hdrBumpOff, top+want)
			r.addHdr(hdrUsedOff, int64(want))
			return top, nil
		}
		for j := c + 1; j < len(classSize); j++ {
			off := r.popLocked(j)
			if off == 0 {
				continue
			}
			sz := blockSize(load64(r.mem, off))
			if rest := sz - want; rest >= minBlock {
				store64(r.mem, off+want, blockWord(rest, kindFree))
				store64(r.mem, off, blockWord(want, kind))
				r.pushLocked(off+want, rest)
				sz = want
			} else {
				store64(r.mem, off, blockWord(sz, kind))
			}
			r.addHdr(hdrUsedOff, int64(sz))
			return off, nil
		}
		if attempt > 0 || r.hdr(hdrFreeBytesOff) < want {
			break
		}
		if r.coalesceLocked(nil) != nil {
			break
		}
	}
	return 0, wire.ENOSPC
}

// freeLocked returns the unreachable block at off to its list. A block
// that is not a valid allocated block (a damaged file) is left alone: a
// leak, which Repair reclaims, rather than a write to a wild offset.
func (r *region) freeLocked(off uint64) {
	sz, kind, ok := r.blockAt(off)
	if !ok || kind != kindNode && kind != kindValue {
		return
	}
	r.addHdr(hdrUsedOff, -int64(sz))
	r.pushLocked(off, sz)
}

// coalesceLocked rebuilds every free list from a walk of the arena,
// merging runs of adjacent free blocks and returning a trailing run to the
// bump pointer. If live is not nil, a block is free unless live(off) says
// it is reachable (Repair), and allocated blocks that are not live are
// marked free; otherwise the block kinds decide.
func (r *region) coalesceLocked(live func(off uint64) bool) error {
	top := r.hdr(hdrBumpOff)
	if !r.bumpOK(top) {
		return r.corrupt(hdrBumpOff, "bad arena top")
	}
	for c := range classSize {
		r.setHdr(freeHead(c), 0)
	}
	r.setHdr(hdrFreeBytesOff, 0)
	used := uint64(0)
	var runOff, runSize uint64
	flush := func() {
		if runSize != 0 {
			store64(r.mem, runOff, blockWord(runSize, kindFree))
			r.pushLocked(runOff, runSize)
			runSize = 0
		}
	}
	for off := r.arenaOff; off < top; {
		sz, kind, ok := r.blockAt(off)
		if !ok {
			return r.corrupt(off, "bad block header")
		}
		free := kind == kindFree
		if live != nil && kind != kindHead {
			free = !live(off)
		}
		if !free {
			flush()
			used += sz
		} else if runSize != 0 && runSize+sz <= maxBlock {
			runSize += sz
		} else {
			flush()
			runOff, runSize = off, sz
			if kind != kindFree {
				store64(r.mem, off, blockWord(sz, kindFree))
			}
		}
		off += sz
	}
	if runSize != 0 {
		r.setHdr(hdrBumpOff, runOff)
	}
	r.setHdr(hdrUsedOff, used)
	return nil
}
