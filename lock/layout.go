package lock

// Layout of the lock region. Every offset below is relative to the start of
// the region handed to Init or Attach; every field is little-endian and
// naturally aligned (the region itself must be 8-byte aligned). The region
// holds no pointers: it may be mapped at different addresses in different
// processes. docs/LOCK.md carries the same tables.

// Region header.
const (
	offMagic        = 0                        // u32 magic
	offVersion      = offMagic + 4             // u32 layout version
	offState        = offVersion + 4           // u32 state word (futex word)
	offDrainSeq     = offState + 4             // u32 drain sequence (futex word a draining writer sleeps on)
	offSlotCount    = offDrainSeq + 4          // u32 number of holder slots (layout check)
	offSlotSize     = offSlotCount + 4         // u32 bytes per holder slot (layout check)
	offHighWater    = offSlotSize + 4          // u32 slots [0, high water) may be in use
	offStrayUnlocks = offHighWater + 4         // u32 Unlock/RUnlock calls that found nothing to release
	offReclaimedW   = offStrayUnlocks + 4      // u64 dead writers cleared
	offReclaimedR   = offReclaimedW + 8        // u64 read holds of dead processes dropped
	offReclaimedS   = offReclaimedR + 8        // u64 slots of dead processes freed
	offForced       = offReclaimedS + 8        // u64 ForceUnlock calls
	offReserved     = offForced + 8            // reserved, zero
	headerSize      = 128                      // header bytes; slots follow
	reservedSize    = headerSize - offReserved // bytes of the reserved area
)

// Holder slot: one per attached handle (normally one per process). Slot i
// starts at headerSize + i*slotSize.
const (
	slotOffWord    = 0                  // u64 slot word: identity, state, generation, read-hold count
	slotOffStart   = slotOffWord + 8    // u64 start time of the process (clock ticks since boot)
	slotOffWaiters = slotOffStart + 8   // u32 goroutines of this handle sleeping (statistics only)
	slotOffPad     = slotOffWaiters + 4 // u32 reserved, zero
	slotOffExec    = slotOffPad + 4     // u64 program word: generation << 48 | start of the stack (execStackMask)
	slotSize       = 32                 // bytes per slot
	slotCount      = (Size - headerSize) / slotSize
)

// Size is the number of bytes the lock occupies at the start of its region.
const Size = 4096

// Identification.
const (
	Magic   = 0x4b4c4346 // "FCLK" read as little-endian bytes
	Version = 1          // layout version; bumped on any incompatible change
)

// State word (u32 at offState). The write owner is recorded in the same word
// that carries the write bit, so one CAS both takes the lock and names the
// holder.
//
//	bits  0..6   owner: slot index + 1 of the writer, 0 = no writer
//	bit   7      draining: the writer waits for readers to leave (has not returned from Lock)
//	bit   8      waiters: someone sleeps on the state word; the releasing writer wakes all
//	bit   9      owner died: a writer died holding the lock; data needs repair
//	bits 10..31  write sequence, incremented on every write acquisition (ABA guard)
const (
	stateOwnerBits = 7
	stateOwnerMask = 1<<stateOwnerBits - 1
	stateDraining  = 1 << stateOwnerBits
	stateWaiters   = stateDraining << 1
	stateOwnerDied = stateWaiters << 1
	stateSeqShift  = stateOwnerBits + 3
	stateSeqOne    = 1 << stateSeqShift
)

// Slot word (u64 at slotOffWord). The read-hold count sits in the top bits so
// that a stray decrement wraps inside the count field and never borrows from
// the identity below it.
//
//	bits  0..21  pid (Linux pids are below 1<<22)
//	bits 22..23  slot state: free, claiming, active
//	bits 24..39  generation, incremented on every claim (ABA guard)
//	bits 40..63  read holds of this handle
const (
	slotPidBits    = 22
	slotPidMask    = 1<<slotPidBits - 1
	slotStateShift = slotPidBits
	slotStateMask  = 3 << slotStateShift
	slotFree       = 0 << slotStateShift
	slotClaiming   = 1 << slotStateShift
	slotActive     = 2 << slotStateShift
	slotGenShift   = slotStateShift + 2
	slotGenBits    = 16
	slotGenMask    = (1<<slotGenBits - 1) << slotGenShift
	slotCountShift = slotGenShift + slotGenBits
	slotCountOne   = 1 << slotCountShift
	slotCountMask  = ^uint64(slotCountOne - 1)

	// MaxReadHolds is the most read holds one handle may have at once.
	// RLock beyond it returns wire.ENOSPC. It is half the count field, so
	// that an underflowed (wrapped) count is told apart from a large one.
	MaxReadHolds = 1<<(64-slotCountShift-1) - 1
)

// Program word (u64 at slotOffExec): which program the claiming process
// ran, so that a process that replaced its program with exec (same pid,
// same start time) is told apart. The start of its stack, kept to 48 bits,
// moves with every exec. The slot's generation sits above it: a word left
// by an earlier claim of the slot (a claimer that does not write the word)
// has another generation and is not used. A stack of 0 means not known.
const (
	execGenShift  = 48
	execStackMask = 1<<execGenShift - 1
)

// execWord returns the program word of a claim of generation gen (the slot
// word's generation field, shifted) by a program whose stack starts at
// stack.
func execWord(gen, stack uint64) uint64 {
	return gen>>slotGenShift<<execGenShift | stack&execStackMask
}

// Slots is the number of holder slots: the most handles (Attach or Init
// results that have not been Detached) that may use one lock at once.
const Slots = slotCount

// Compile-time layout checks: the header fits, the owner field can name
// every slot, and the slot fields fit in a slot.
const (
	_ = uint(headerSize - offReserved)
	_ = uint(stateOwnerMask - slotCount)
	_ = uint(slotSize - slotOffExec - 8)
	_ = uint(Size - headerSize - slotCount*slotSize)
)
