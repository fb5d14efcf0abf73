//go:build linux

package lock

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"
)

// TestWordVectors: known-answer vectors of the lock region (docs/LOCK.md,
// "Vectors"): the header after Init, the first holder slot, and the state
// and slot words after a write acquisition, its release and a read hold.
// The process id and start time in the slot are this process's; every
// other byte is fixed by the layout.
func TestWordVectors(t *testing.T) {
	mem, l := newRegion(t)
	check := func(what string, got []byte, want string) {
		t.Helper()
		if h := hex.EncodeToString(got); h != want {
			t.Errorf("%s:\n got %s\nwant %s", what, h, want)
		}
	}
	le := binary.LittleEndian
	pid := uint64(os.Getpid())
	slotWord := func(holds uint64) string {
		var b [8]byte
		// read holds << 40 | generation 1 << 24 | active (2) << 22 | pid
		le.PutUint64(b[:], holds<<40|1<<24|2<<22|pid)
		return hex.EncodeToString(b[:])
	}
	// magic "FCLK", version 1, state 0, drain sequence 0, 124 slots of 32
	// bytes, high water 1 (this handle's slot), no stray unlocks, then the
	// four u64 counters and the reserved bytes, all zero.
	check("header after Init", mem[:headerSize], ""+
		"46434c4b"+"01000000"+"00000000"+"00000000"+"7c000000"+"20000000"+"01000000"+"00000000"+
		"0000000000000000"+"0000000000000000"+"0000000000000000"+"0000000000000000"+
		"0000000000000000000000000000000000000000000000000000000000000000"+
		"0000000000000000000000000000000000000000000000000000000000000000")
	slot := mem[headerSize : headerSize+slotSize]
	check("slot 0 word", slot[slotOffWord:slotOffStart], slotWord(0))
	if le.Uint64(slot[slotOffStart:]) == 0 {
		t.Error("slot 0 start time is zero")
	}
	check("slot 0 waiters and pad", slot[slotOffWaiters:slotOffExec], "0000000000000000")
	if le.Uint64(slot[slotOffExec:]) == 0 {
		t.Error("slot 0 program word is zero")
	}
	check("slot 1", mem[headerSize+slotSize:headerSize+2*slotSize], "0000000000000000000000000000000000000000000000000000000000000000")

	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	// owner 1 (slot 0 + 1), write sequence 1 (bit 10).
	check("state while write-held", mem[offState:offState+4], "01040000")
	l.Unlock()
	check("state after Unlock", mem[offState:offState+4], "00040000")
	if err := l.RLock(); err != nil {
		t.Fatal(err)
	}
	check("state while read-held", mem[offState:offState+4], "00040000")
	check("slot 0 word with one read hold", slot[slotOffWord:slotOffStart], slotWord(1))
	l.RUnlock()
	check("slot 0 word after RUnlock", slot[slotOffWord:slotOffStart], slotWord(0))
}
