package shm

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// region is one mapped file (or, in tests, one heap buffer) holding a map.
// Its methods do not lock: the caller holds the shared lock for the read
// methods and the exclusive lock for the write methods (names say which:
// the write methods end in Locked). Immutable geometry is cached here after
// it was validated, so a header scribbled later cannot steer a reader
// outside the mapping.
type region struct {
	mem  []byte // the whole file
	path string // "" for heap regions
	layout
	mask     uint64 // slots-1: the largest active index's probe mask
	bufBytes uint64 // bytes per index buffer: slots*slotSize
	nodeLast uint64 // highest offset at which a node's fixed words fit
	recLast  uint64 // highest offset at which a record header fits
	maxNodes uint64 // bound for every walk: arena bytes / smallest node
	maxFree  uint64 // bound for free-list walks: arena bytes / minBlock

	// rng is the writer's level generator; guarded by the exclusive lock.
	rng uint64
}

// formatRegion writes a fresh, empty map into mem (all zero, len(mem) ==
// l.fileSize) except the lock region, which the caller initializes.
func formatRegion(mem []byte, l layout, gen uint64) *region {
	copy(mem[hdrMagicOff:], fileMagic)
	binary.LittleEndian.PutUint32(mem[hdrVersionOff:], fileVersion)
	binary.LittleEndian.PutUint32(mem[hdrHdrSizeOff:], hdrSize)
	binary.LittleEndian.PutUint64(mem[hdrFileSizeOff:], l.fileSize)
	binary.LittleEndian.PutUint64(mem[hdrLockOffOff:], lockRegionOff)
	binary.LittleEndian.PutUint64(mem[hdrLockSizeOff:], lockSize)
	binary.LittleEndian.PutUint64(mem[hdrIndexOffOff:], l.indexOff)
	binary.LittleEndian.PutUint64(mem[hdrIndexSlotsOff:], l.slots)
	binary.LittleEndian.PutUint64(mem[hdrArenaOffOff:], l.arenaOff)
	binary.LittleEndian.PutUint64(mem[hdrArenaSizeOff:], l.arenaEnd-l.arenaOff)
	binary.LittleEndian.PutUint32(mem[hdrMaxLevelOff:], maxLevel)
	binary.LittleEndian.PutUint32(mem[hdrClassesOff:], uint32(len(classSize)))
	binary.LittleEndian.PutUint64(mem[hdrHeadOffOff:], l.headOff)
	binary.LittleEndian.PutUint64(mem[hdrLayoutSumOff:], xxhash.Sum64(mem[:hdrLayoutSumOff]))
	r := newRegion(mem, "", l)
	h := l.headOff
	store64(mem, h, blockWord(headNodeSize, kindHead))
	store64(mem, h+nodeMetaOff, nodeMeta(0, maxLevel, 0))
	store64(mem, hdrBumpOff, h+headNodeSize)
	store64(mem, hdrUsedOff, headNodeSize)
	store64(mem, hdrGenOff, gen)
	store64(mem, hdrIndexActOff, (minSlots-1)<<idxMaskShift)
	return r
}

func newRegion(mem []byte, path string, l layout) *region {
	if uint64(len(mem)) < l.arenaEnd {
		panic("shm: mapping shorter than its arena")
	}
	r := &region{mem: mem, path: path, layout: l}
	r.mask = l.slots - 1
	r.bufBytes = l.slots * slotSize
	r.nodeLast = l.arenaEnd - nodeNextOff
	r.recLast = l.arenaEnd - recHdrSize
	minNode := align(nodeNextOff+wordSize+1+recHdrSize, blockAlign)
	r.maxNodes = (l.arenaEnd - l.arenaOff) / minNode
	r.maxFree = (l.arenaEnd - l.arenaOff) / minBlock
	r.rng = xxhash.Sum64String(path) | 1
	return r
}

// attachRegion validates the header of an existing file image and returns
// a region over it. It reads nothing outside mem and never panics.
func attachRegion(mem []byte, path string) (*region, error) {
	bad := func(off uint64, why string) error {
		return (&region{path: path}).corrupt(off, why)
	}
	if len(mem) < hdrSize {
		return nil, bad(uint64(len(mem)), "file shorter than the header")
	}
	if string(mem[hdrMagicOff:hdrMagicOff+len(fileMagic)]) != fileMagic {
		return nil, bad(hdrMagicOff, "bad magic")
	}
	if v := binary.LittleEndian.Uint32(mem[hdrVersionOff:]); v != fileVersion {
		return nil, bad(hdrVersionOff, "unsupported version "+utoa(uint64(v)))
	}
	if xxhash.Sum64(mem[:hdrLayoutSumOff]) != binary.LittleEndian.Uint64(mem[hdrLayoutSumOff:]) {
		return nil, bad(hdrLayoutSumOff, "header checksum mismatch")
	}
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(mem[off:]) }
	fileSize := u64(hdrFileSizeOff)
	if fileSize != uint64(len(mem)) {
		return nil, bad(hdrFileSizeOff, "file size "+utoa(uint64(len(mem)))+" differs from header size "+utoa(fileSize))
	}
	l, ok := computeLayout(fileSize, u64(hdrIndexSlotsOff))
	switch {
	case !ok:
		return nil, bad(hdrIndexSlotsOff, "impossible geometry")
	case binary.LittleEndian.Uint32(mem[hdrHdrSizeOff:]) != hdrSize:
		return nil, bad(hdrHdrSizeOff, "bad header size")
	case u64(hdrLockOffOff) != lockRegionOff || u64(hdrLockSizeOff) != lockSize:
		return nil, bad(hdrLockOffOff, "bad lock placement")
	case u64(hdrIndexOffOff) != l.indexOff:
		return nil, bad(hdrIndexOffOff, "bad index offset")
	case u64(hdrArenaOffOff) != l.arenaOff || u64(hdrArenaSizeOff) != l.arenaEnd-l.arenaOff:
		return nil, bad(hdrArenaOffOff, "bad arena geometry")
	case binary.LittleEndian.Uint32(mem[hdrMaxLevelOff:]) != maxLevel:
		return nil, bad(hdrMaxLevelOff, "bad level count")
	case binary.LittleEndian.Uint32(mem[hdrClassesOff:]) != uint32(len(classSize)):
		return nil, bad(hdrClassesOff, "bad size class count")
	case u64(hdrHeadOffOff) != l.headOff:
		return nil, bad(hdrHeadOffOff, "bad head offset")
	}
	if !aligned8(mem) {
		return nil, bad(0, "mapping not 8-byte aligned")
	}
	r := newRegion(mem, path, l)
	hw := load64(mem, l.headOff)
	if !blockOK(hw) || blockKind(hw) != kindHead || blockSize(hw) != headNodeSize ||
		load64(mem, l.headOff+nodeMetaOff) != nodeMeta(0, maxLevel, 0) {
		return nil, bad(l.headOff, "bad head node")
	}
	if !l.bumpOK(load64(mem, hdrBumpOff)) {
		return nil, bad(hdrBumpOff, "bad arena top")
	}
	return r, nil
}

// generation returns the generation word (number | genSuperseded).
func (r *region) generation() uint64 { return load64(r.mem, hdrGenOff) }

// superseded reports whether Grow has replaced this file at its path.
func (r *region) superseded() bool { return load64(r.mem, hdrGenOff)&genSuperseded != 0 }

func (r *region) hdr(off uint64) uint64      { return load64(r.mem, off) }
func (r *region) setHdr(off, v uint64)       { store64(r.mem, off, v) }
func (r *region) addHdr(off uint64, d int64) { store64(r.mem, off, load64(r.mem, off)+uint64(d)) }
