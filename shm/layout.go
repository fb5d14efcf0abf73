package shm

import "encoding/binary"

// File layout. Every offset and size of the file format is named here and
// derived from the others; docs/SHM.md has the same tables. All words are
// little-endian 64-bit values at 8-byte aligned offsets; the format is only
// produced and consumed on little-endian hosts (hostLittleEndian).
//
//	[0, hdrSize)                         header page
//	[lockRegionOff, +lockRegionSize)     lock.RWLock (lock.Size bytes)
//	[indexOff, +2*slots*slotSize)        two index buffers, one active
//	[arenaOff, arenaOff+arenaSize)       arena: head node, then blocks
const (
	wordSize = 8

	fileMagic   = "FCALLSHM"
	fileVersion = 5

	// Immutable part of the header, written once by Create and covered by
	// hdrLayoutSumOff.
	hdrMagicOff      = 0                    // [8]byte fileMagic
	hdrVersionOff    = hdrMagicOff + 8      // u32 fileVersion
	hdrHdrSizeOff    = hdrVersionOff + 4    // u32 hdrSize
	hdrFileSizeOff   = hdrHdrSizeOff + 4    // u64 total file size
	hdrLockOffOff    = hdrFileSizeOff + 8   // u64 lockRegionOff
	hdrLockSizeOff   = hdrLockOffOff + 8    // u64 lockSize
	hdrIndexOffOff   = hdrLockSizeOff + 8   // u64 indexOff
	hdrIndexSlotsOff = hdrIndexOffOff + 8   // u64 slots per index buffer
	hdrArenaOffOff   = hdrIndexSlotsOff + 8 // u64 arenaOff
	hdrArenaSizeOff  = hdrArenaOffOff + 8   // u64 arenaSize
	hdrMaxLevelOff   = hdrArenaSizeOff + 8  // u32 maxLevel
	hdrClassesOff    = hdrMaxLevelOff + 4   // u32 number of size classes
	hdrHeadOffOff    = hdrClassesOff + 4    // u64 offset of the head node
	hdrLayoutSumOff  = hdrHeadOffOff + 8    // u64 xxhash of [0, hdrLayoutSumOff)
	hdrLayoutEnd     = hdrLayoutSumOff + 8  // end of the immutable part
	cacheLine        = 64                   // separates reader- and writer-hot words
	hdrGenOff        = 2 * cacheLine        // u64 generation | genSuperseded
	hdrIndexActOff   = hdrGenOff + 8        // u64 active index: buffer (bit 0) | (slots in use - 1) << 1
	hdrWriteSeqOff   = hdrIndexActOff + 8   // u64 write sequence: odd while a writer may be changing the file
	hdrBumpOff       = 3 * cacheLine        // u64 first never-allocated arena byte
	hdrNodesOff      = hdrBumpOff + 8       // u64 nodes linked at level 0
	hdrUsedOff       = hdrNodesOff + 8      // u64 bytes in allocated blocks
	hdrFreeBytesOff  = hdrUsedOff + 8       // u64 bytes in free-listed blocks
	hdrIndexLiveOff  = hdrFreeBytesOff + 8  // u64 live index slots
	hdrIndexTombsOff = hdrIndexLiveOff + 8  // u64 tombstone index slots
	hdrWritesOff     = hdrIndexTombsOff + 8 // u64 completed Put/Delete count
	hdrRepairsOff    = hdrWritesOff + 8     // u64 completed repairs
	hdrFreeHeadsOff  = 8 * cacheLine        // u64 per size class: free list head
	hdrSize          = 4096                 // header page
	hdrFreeHeadsMax  = (hdrSize - hdrFreeHeadsOff) / wordSize

	// genSuperseded is set in an old file's generation word once Grow has
	// renamed a newer file over its path. genMask extracts the number.
	genSuperseded = uint64(1) << 63
	genMask       = genSuperseded - 1

	// The lock region. lockSize must equal lock.Size (checked at init in
	// map.go); the region is one page so that a read-only Map can map it
	// writable on its own while the rest of the file stays read-only.
	lockRegionOff  = hdrSize
	lockRegionSize = 4096
	lockSize       = 4096
	indexOffset    = lockRegionOff + lockRegionSize

	// Index slot: one word, empty, a tombstone or
	// tag<<slotTagShift | (level-1)<<slotLevelShift | nodeOffset>>blockShift.
	// The node's level is in the slot so that a reader knows where the key
	// and the inline value record start without waiting for the node's
	// meta word.
	slotNodeOff    = 0
	slotSize       = wordSize
	slotEmpty      = 0
	slotTomb       = 1
	slotTagShift   = 40
	slotLevelShift = 36
	slotLevelMask  = 0xf
	slotOffMask    = uint64(1)<<slotLevelShift - 1
	minSlots       = 64
	// The active-index word (hdrIndexActOff): the active buffer in bit 0,
	// above it the probe mask of the slots it uses. A buffer has room for
	// slots slots; the active one uses the first mask+1 (a power of two) of
	// them, sized to the keys at its last rebuild (slotsFor).
	idxMaskShift = 1
	// maxFileSize keeps every node offset>>blockShift within slotOffMask.
	maxFileSize = (slotOffMask + 1) << blockShift
	// A buffer is full when live+tombstones reach 3/4 of its slots; a
	// rebuild sizes it for a load of at most 1/2 (slotsFor).
	slotLoadNum = 3
	slotLoadDen = 4
	// bytesPerSlot derives the default slot count from the file size.
	bytesPerSlot = 128

	// Arena blocks. Every block starts on a blockAlign boundary with one
	// header word: size | kind<<blkKindShift | blkMagic<<blkMagicShift.
	blockShift    = 4
	blockAlign    = 1 << blockShift
	blkHdrSize    = wordSize
	blkSizeMask   = uint64(1)<<32 - 1
	blkKindShift  = 32
	blkKindMask   = 0xff
	blkMagicShift = 56
	blkMagic      = 0xB1
	minBlock      = blkHdrSize + wordSize // header + free-list link
	freeNextOff   = blkHdrSize            // free block: u64 next free block
	arenaAlign    = 4096

	kindFree  = 1
	kindNode  = 2
	kindValue = 3
	kindHead  = 4

	// Skiplist node, relative to its block:
	//	0  block header
	//	8  u64 keyHash of the key
	//	16 u64 valRef: absolute offset of the current value record
	//	24 u64 meta: keyLen | level<<16 | hidden<<24 | inlineCap<<32
	//	32 u64 next[level]: absolute node offsets, 0 = end
	//	   key bytes, then padding to 8, then the inline value record
	nodeHashOff    = blkHdrSize
	nodeValRefOff  = nodeHashOff + 8
	nodeMetaOff    = nodeValRefOff + 8
	nodeNextOff    = nodeMetaOff + 8
	metaLevelShift = 16
	metaLevelMask  = 0xff
	// metaHidden marks a node that is linked but not part of the map: an
	// insert not yet committed, or a delete already committed. Readers skip
	// it; Repair unlinks it. Clearing it commits an insert, setting it
	// commits a delete: one store that Get and Range both see.
	metaHidden   = uint64(1) << 24
	metaCapShift = 32
	metaKeyMask  = 0xffff

	// Value record: one word len | sum<<32 (sum = low 32 bits of the
	// xxhash of the bytes), then the bytes. It lives either inline in a node
	// or at recOff in a value block of its own.
	recHdrSize   = wordSize
	recSumShift  = 32
	recLenMask   = uint64(1)<<32 - 1
	valueRecOff  = blkHdrSize
	maxLevel     = 16
	levelBits    = 2 // p = 1/4 per level
	headNodeSize = nodeNextOff + maxLevel*wordSize

	// MaxKeyLen and MaxValueLen bound what Put accepts.
	MaxKeyLen   = 4096
	MaxValueLen = 1 << 20

	maxNodeBlock = (nodeNextOff + maxLevel*wordSize + MaxKeyLen + wordSize + recHdrSize + MaxValueLen + blockAlign - 1) &^ (blockAlign - 1)

	// MinSize is the smallest file Create accepts.
	MinSize = 64 << 10
)

// classSize holds the size classes of the allocator: multiples of 16 up to
// 256, then steps of about 1/8 up to maxNodeBlock. Free list c holds blocks
// whose size s satisfies classSize[c] <= s < classSize[c+1]; an allocation
// of n bytes is rounded up to the smallest class >= n, so any block popped
// from that class fits.
var classSize = buildClasses()

func buildClasses() []uint64 {
	var cs []uint64
	for s := uint64(blockAlign); s <= 256; s += blockAlign {
		cs = append(cs, s)
	}
	for s := uint64(256); s < maxNodeBlock; {
		s = align(s+s/8, blockAlign)
		cs = append(cs, s)
	}
	if len(cs) > hdrFreeHeadsMax {
		panic("shm: too many size classes for the header")
	}
	return cs
}

// maxBlock is the largest block size the allocator hands out or merges.
var maxBlock = classSize[len(classSize)-1]

// classCeil returns the smallest class whose size is >= n, or -1.
func classCeil(n uint64) int {
	if n <= 256 {
		if n < blockAlign {
			return 0
		}
		return int((n+blockAlign-1)/blockAlign) - 1
	}
	lo, hi := 256/blockAlign, len(classSize)
	for lo < hi {
		m := (lo + hi) / 2
		if classSize[m] >= n {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == len(classSize) {
		return -1
	}
	return lo
}

// classFloor returns the largest class whose size is <= n (n >= blockAlign).
func classFloor(n uint64) int {
	c := classCeil(n)
	if c < 0 {
		return len(classSize) - 1
	}
	if classSize[c] > n {
		c--
	}
	return c
}

func align(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

func blockWord(size uint64, kind uint64) uint64 {
	return size | kind<<blkKindShift | blkMagic<<blkMagicShift
}

func blockSize(w uint64) uint64 { return w & blkSizeMask }
func blockKind(w uint64) uint64 { return w >> blkKindShift & blkKindMask }
func blockOK(w uint64) bool     { return w>>blkMagicShift == blkMagic }

func nodeMeta(keyLen, level, inlineCap uint64) uint64 {
	return keyLen | level<<metaLevelShift | inlineCap<<metaCapShift
}

// nodeKeyOff is the key's offset relative to the node block.
func nodeKeyOff(level uint64) uint64 { return nodeNextOff + level*wordSize }

// nodeRecOff is the inline value record's offset relative to the node block.
func nodeRecOff(level, keyLen uint64) uint64 {
	return align(nodeKeyOff(level)+keyLen, wordSize)
}

func slotWord(h, node, level uint64) uint64 {
	return h>>slotTagShift<<slotTagShift | (level-1)<<slotLevelShift | node>>blockShift
}

// slotNode and slotLevel decode a live slot's node word.
func slotNode(s uint64) uint64  { return (s & slotOffMask) << blockShift }
func slotLevel(s uint64) uint64 { return (s>>slotLevelShift)&slotLevelMask + 1 }

// hostLittleEndian gates Create and Open: the format is little-endian and
// words are accessed in host order.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// layout is the immutable geometry of one file, validated at open.
type layout struct {
	fileSize uint64
	slots    uint64
	indexOff uint64
	arenaOff uint64
	arenaEnd uint64
	headOff  uint64
}

// bumpOK reports whether b may be the bump pointer of this geometry: on a
// block boundary, above the head node and inside the arena. The word lives
// in the file, so every user checks it before it trusts it.
func (l layout) bumpOK(b uint64) bool {
	return b >= l.headOff+headNodeSize && b <= l.arenaEnd && b%blockAlign == 0
}

// computeLayout derives the geometry for a new file of fileSize bytes with
// slots index slots per buffer (0: derived from the size).
func computeLayout(fileSize, slots uint64) (layout, bool) {
	if fileSize < MinSize || fileSize > maxFileSize || fileSize%arenaAlign != 0 {
		return layout{}, false
	}
	if slots == 0 {
		slots = minSlots
		for slots*2 <= fileSize/bytesPerSlot {
			slots *= 2
		}
	}
	if slots < minSlots || slots&(slots-1) != 0 || slots > fileSize/slotSize {
		return layout{}, false
	}
	var l layout
	l.fileSize = fileSize
	l.slots = slots
	l.indexOff = indexOffset
	l.arenaOff = align(l.indexOff+2*slots*slotSize, arenaAlign)
	if l.arenaOff+arenaAlign > fileSize {
		return layout{}, false
	}
	l.arenaEnd = fileSize
	l.headOff = l.arenaOff
	return l, true
}
