package shm

import (
	"bytes"

	"github.com/cespare/xxhash/v2"
)

// Verify and Repair.
//
// verify checks a region in one of two modes. Tolerant mode (strict false)
// accepts exactly what an interrupted writer may leave behind: one hidden
// node (an insert not yet committed or a delete committed but not finished),
// indexed or not, incomplete towers,
// kindFree blocks on no free list, at most crashLeaks allocated blocks that
// nothing reaches, and a node count off by one. A node that is not hidden is
// always indexed, in both modes: that is what makes Get and Range agree. It
// rejects everything a reader could trip on: a bad header, a block walk that does not tile the
// arena, an offset that is not a block of the right kind, keys out of order,
// a key or value whose checksum does not match, an index slot or a free list
// entry naming the wrong thing. Strict mode, which Repair must reach,
// accepts no residue at all. verify reads only; it never panics and never
// reads outside the mapping.

// crashLeaks bounds the allocated but unreachable blocks one interrupted
// write can leave: Delete unlinks a node and its value block before freeing
// them, and so does Repair with a hidden node; Put allocates a node or value
// block before publishing it.
const crashLeaks = 2

type bitmap []uint64

func newBitmap(n uint64) bitmap              { return make(bitmap, (n+63)/64) }
func (b bitmap) get(i uint64) bool           { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitmap) set(i uint64)                { b[i/64] |= 1 << (i % 64) }
func (b bitmap) unset(i uint64)              { b[i/64] &^= 1 << (i % 64) }
func (r *region) blockBit(off uint64) uint64 { return (off - r.arenaOff) / blockAlign }

// verifier holds the facts gathered by one verification pass.
type verifier struct {
	r       *region
	top     uint64 // bump pointer read once
	starts  bitmap // block starts below top
	reached bitmap // node and value blocks reachable from level 0
	nodes   uint64 // nodes at level 0
	hidden  uint64 // of which hidden (metaHidden)
	towers  [maxLevel]uint64
	blocks  [kindHead + 1]uint64 // blocks per kind
	bytes   [kindHead + 1]uint64 // bytes per kind
}

func newVerifier(r *region) *verifier {
	n := (r.arenaEnd - r.arenaOff) / blockAlign
	return &verifier{r: r, starts: newBitmap(n), reached: newBitmap(n)}
}

// kindAt returns the kind of the block starting at off, 0 if off is not a
// block start.
func (v *verifier) kindAt(off uint64) uint64 {
	r := v.r
	if off < r.arenaOff || off >= v.top || off%blockAlign != 0 || !v.starts.get(r.blockBit(off)) {
		return 0
	}
	return blockKind(load64(r.mem, off))
}

// walkArena checks that the blocks tile [arenaOff, bump).
func (v *verifier) walkArena() error {
	r := v.r
	v.top = r.hdr(hdrBumpOff)
	if !r.bumpOK(v.top) {
		return r.corrupt(hdrBumpOff, "bad arena top")
	}
	for off := r.arenaOff; off < v.top; {
		w := load64(r.mem, off)
		sz, kind := blockSize(w), blockKind(w)
		if !blockOK(w) || sz < minBlock || sz%blockAlign != 0 || sz > v.top-off ||
			kind < kindFree || kind > kindHead || (kind == kindHead) != (off == r.headOff) {
			return r.corrupt(off, "bad block header")
		}
		v.starts.set(r.blockBit(off))
		v.blocks[kind]++
		v.bytes[kind] += sz
		off += sz
	}
	return nil
}

// walkLevel0 checks every node reachable at level 0: block, bounds, order,
// key hash, value record and checksum.
func (v *verifier) walkLevel0() error {
	r := v.r
	prev := []byte(nil)
	for off := r.next(r.head(), 0); off != 0; {
		if v.nodes >= v.blocks[kindNode] {
			return r.corrupt(off, "level 0 longer than the node count (cycle?)")
		}
		if v.kindAt(off) != kindNode {
			return r.corrupt(off, "level 0 link to a non-node block")
		}
		n, ok := r.node(off)
		end := off + blockSize(load64(r.mem, off))
		if !ok || n.keyLen == 0 || n.keyOff+n.keyLen > end || n.recOff()+recHdrSize+n.icap > end {
			return r.corrupt(off, "bad node geometry")
		}
		k := r.key(n)
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return r.corrupt(off, "keys out of order")
		}
		if keyHash(k) != load64(r.mem, off+nodeHashOff) {
			return r.corrupt(off, "key checksum mismatch")
		}
		blk, at, why := v.checkRecord(n, load64(r.mem, off+nodeValRefOff))
		if why != "" {
			return r.corrupt(at, why)
		}
		if blk != 0 {
			v.reached.set(r.blockBit(blk))
		}
		v.reached.set(r.blockBit(off))
		for i := uint64(0); i < n.level; i++ {
			v.towers[i]++
		}
		v.nodes++
		if n.hidden {
			v.hidden++
		}
		prev = k
		off = r.next(n, 0)
	}
	return nil
}

// checkUpper checks levels 1..maxLevel-1: sorted sublists of level 0 made
// of nodes tall enough; strict also wants every tower complete.
func (v *verifier) checkUpper(strict bool) error {
	r := v.r
	for i := uint64(1); i < maxLevel; i++ {
		var prev []byte
		count := uint64(0)
		for off := r.next(r.head(), i); off != 0; count++ {
			if count >= v.nodes || v.kindAt(off) != kindNode || !v.reached.get(r.blockBit(off)) {
				return r.corrupt(off, "upper level link to a node not at level 0")
			}
			n, _ := r.node(off)
			k := r.key(n)
			if n.level <= i || prev != nil && bytes.Compare(prev, k) >= 0 {
				return r.corrupt(off, "upper level out of order")
			}
			prev = k
			off = r.next(n, i)
		}
		if strict && count != v.towers[i] {
			return r.corrupt(r.headOff, "incomplete tower at level "+utoa(i))
		}
	}
	return nil
}

// checkIndex checks the active index buffer against level 0.
func (v *verifier) checkIndex(strict bool) error {
	r := v.r
	w := load64(r.mem, hdrIndexActOff)
	if n := w>>idxMaskShift + 1; n&(n-1) != 0 || n < minSlots || n > r.slots {
		return r.corrupt(hdrIndexActOff, "bad active index word")
	}
	base, mask := r.indexOf(w)
	indexed := newBitmap((r.arenaEnd - r.arenaOff) / blockAlign)
	var live, tombs uint64
	for i := uint64(0); i <= mask; i++ {
		a := base + i*slotSize
		s := load64(r.mem, a+slotNodeOff)
		switch s {
		case slotEmpty:
			continue
		case slotTomb:
			tombs++
			continue
		}
		off := slotNode(s)
		if v.kindAt(off) != kindNode || !v.reached.get(r.blockBit(off)) || indexed.get(r.blockBit(off)) {
			return r.corrupt(a, "index slot names no live node")
		}
		if load64(r.mem, off+nodeHashOff)>>slotTagShift != s>>slotTagShift {
			return r.corrupt(a, "index slot tag mismatch")
		}
		if n, _ := r.node(off); n.level != slotLevel(s) {
			return r.corrupt(a, "index slot level mismatch")
		}
		indexed.set(r.blockBit(off))
		live++
	}
	for off := r.next(r.head(), 0); off != 0; {
		n, _ := r.node(off)
		if !indexed.get(r.blockBit(off)) {
			if !n.hidden {
				return r.corrupt(off, "node missing from the index")
			}
		} else if f, ok := r.find(r.key(n), load64(r.mem, off+nodeHashOff)); !ok || f.off != off {
			return r.corrupt(off, "indexed node not found by its key")
		}
		off = r.next(n, 0)
	}
	if strict && (live != r.hdr(hdrIndexLiveOff) || tombs != r.hdr(hdrIndexTombsOff)) {
		return r.corrupt(base, "index does not match level 0")
	}
	return nil
}

// checkRecord checks that ref names a complete value record that node n
// may hold: its inline record, within its capacity, or one in a value
// block that no node checked so far reaches, checksum intact. It returns
// that value block (0 for the inline record) or, if the record is bad, the
// offset and reason to report.
func (v *verifier) checkRecord(n nodeView, ref uint64) (blk, at uint64, why string) {
	r := v.r
	d, l, ok := r.record(ref)
	switch {
	case !ok:
		return 0, n.off + nodeValRefOff, "bad value reference"
	case ref == n.recOff():
		if l > n.icap {
			return 0, ref, "inline value longer than its space"
		}
	default:
		blk = ref - valueRecOff
		if v.kindAt(blk) != kindValue || v.reached.get(r.blockBit(blk)) ||
			d+l > blk+blockSize(load64(r.mem, blk)) {
			return 0, n.off + nodeValRefOff, "value reference to a bad block"
		}
	}
	if uint32(xxhash.Sum64(r.mem[d:d+l])) != uint32(load64(r.mem, ref)>>recSumShift) {
		return 0, ref, "value checksum mismatch"
	}
	return blk, 0, ""
}

// checkFree checks the free lists and the blocks nothing reaches.
func (v *verifier) checkFree(strict bool) error {
	r := v.r
	listed := newBitmap((r.arenaEnd - r.arenaOff) / blockAlign)
	var count, freeBytes uint64
	for c := range classSize {
		for off := r.hdr(freeHead(c)); off != 0; count++ {
			if count >= v.blocks[kindFree] || v.kindAt(off) != kindFree || listed.get(r.blockBit(off)) {
				return r.corrupt(freeHead(c), "free list names a bad block")
			}
			sz := blockSize(load64(r.mem, off))
			if sz < classSize[c] || c+1 < len(classSize) && sz >= classSize[c+1] {
				return r.corrupt(off, "free block on the wrong list")
			}
			listed.set(r.blockBit(off))
			freeBytes += sz
			off = load64(r.mem, off+freeNextOff)
		}
	}
	leaks := v.blocks[kindNode] + v.blocks[kindValue]
	for i := range v.reached {
		for w := v.reached[i]; w != 0; w &= w - 1 {
			leaks--
		}
	}
	if leaks > crashLeaks || strict && leaks != 0 {
		return r.corrupt(r.arenaOff, utoa(leaks)+" unreachable allocated blocks")
	}
	if strict && (count != v.blocks[kindFree] || freeBytes != r.hdr(hdrFreeBytesOff)) {
		return r.corrupt(hdrFreeBytesOff, "free lists do not match the arena")
	}
	return nil
}

// verify runs every check; see the top of this file for the two modes.
func (r *region) verify(strict bool) error {
	v := newVerifier(r)
	if err := v.walkArena(); err != nil {
		return err
	}
	if err := v.walkLevel0(); err != nil {
		return err
	}
	if err := v.checkUpper(strict); err != nil {
		return err
	}
	if err := v.checkIndex(strict); err != nil {
		return err
	}
	if err := v.checkFree(strict); err != nil {
		return err
	}
	if v.hidden > 1 || strict && v.hidden != 0 {
		return r.corrupt(r.headOff, utoa(v.hidden)+" hidden nodes at level 0")
	}
	nodes, visible := r.hdr(hdrNodesOff), v.nodes-v.hidden
	if strict && (nodes != visible || r.hdr(hdrUsedOff) != v.bytes[kindNode]+v.bytes[kindValue]+v.bytes[kindHead]) ||
		nodes > visible+1 || nodes+1 < visible {
		return r.corrupt(hdrNodesOff, "counters do not match the arena")
	}
	return nil
}

// repairLocked brings a region that a writer left at any instruction back
// to the strict invariants: towers relinked from level 0 without hidden
// nodes, index rebuilt, hidden nodes unlinked from level 0 (an uncommitted
// insert is undone, a committed delete finished: readers saw neither key,
// and after the repair they still do not), unreachable blocks freed and
// merged, counters recounted. Each step keeps the region readable, so a
// repair that dies is repaired by the next one. It fails with wire.EPROTO,
// changing nothing, if level 0 itself is damaged (that is corruption, not a
// crash).
func (r *region) repairLocked() error {
	v := newVerifier(r)
	if err := v.walkArena(); err != nil {
		return err
	}
	if err := v.walkLevel0(); err != nil {
		return err
	}
	var last [maxLevel]nodeView
	for i := range last {
		last[i] = r.head()
	}
	for off := r.next(r.head(), 0); off != 0; {
		n, _ := r.node(off)
		for i := uint64(1); i < n.level && !n.hidden; i++ {
			r.setNext(n, i, 0)
			r.setNext(last[i], i, off)
			last[i] = n
		}
		off = r.next(n, 0)
	}
	for i := uint64(1); i < maxLevel; i++ {
		r.setNext(last[i], i, 0)
	}
	if !r.rebuildIndexLocked(0) {
		return r.corrupt(r.indexOff, "index cannot hold level 0")
	}
	// No upper level and no index slot names a hidden node any more: take
	// them off level 0, and their blocks become unreachable.
	prev := r.head()
	for off := r.next(prev, 0); off != 0; {
		n, _ := r.node(off)
		off = r.next(n, 0)
		if !n.hidden {
			prev = n
			continue
		}
		r.setNext(prev, 0, off)
		v.reached.unset(r.blockBit(n.off))
		if ref := load64(r.mem, n.off+nodeValRefOff); ref != n.recOff() {
			v.reached.unset(r.blockBit(ref - valueRecOff))
		}
	}
	if err := r.coalesceLocked(func(off uint64) bool { return v.reached.get(r.blockBit(off)) }); err != nil {
		return err
	}
	r.setHdr(hdrNodesOff, v.nodes-v.hidden)
	r.addHdr(hdrRepairsOff, 1)
	return r.verify(true)
}
