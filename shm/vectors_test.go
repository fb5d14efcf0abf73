package shm

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// Known-answer vectors of the file format (docs/SHM.md, "Vectors"). They
// are written from today's format and fixed here: a change to keyHash's
// constants, to the header or to the node or index slot layout changes
// what is on disk, and fails these tests.

// TestKeyHashVectors: keyHash of fixed keys of every length class (shorter
// than a word, one to four words with overlap, longer keys through
// xxhash64).
func TestKeyHashVectors(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint64
	}{
		{"", 0xa5506ff52926ac13},
		{"a", 0xa21b3e8345033071},
		{"abcdefg", 0xd733339009cfb523},
		{"abcdefgh", 0x1d02ff7d1499fe5d},
		{"abcdefghi", 0x7c45a28ae692bc21},
		{"key-000000000017", 0x7578758ba7e65af1},
		{"registry/service/x", 0xeadf27b1cc17f87f},
		{"abcdefghijklmnopqrstuvwxyz012345", 0x8a1f8da16a7fef91},
		{"abcdefghijklmnopqrstuvwxyz0123456", 0x4f89e4082bcbf673},
	} {
		if got := keyHash([]byte(tc.key)); got != tc.want {
			t.Errorf("keyHash(%q) = %#016x, want %#016x", tc.key, got, tc.want)
		}
	}
}

// vectorFile creates a MinSize file with 64 index slots per buffer, and
// puts key "key-a" = "value-1" at level 1 (the level generator is seeded
// to a value that draws 1). It returns the file's bytes.
func vectorFile(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(testDir(t), "v")
	m, err := Create(p, MinSize, Options{IndexSlots: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.cur.Load().r.rng = 1
	if err := m.Put([]byte("key-a"), []byte("value-1")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFileVectors: the header's immutable part, its counters after one
// Put, the one live index slot, and the node block of that Put.
func TestFileVectors(t *testing.T) {
	b := vectorFile(t)
	le := binary.LittleEndian
	check := func(what string, got []byte, want string) {
		t.Helper()
		if h := hex.EncodeToString(got); h != want {
			t.Errorf("%s:\n got %s\nwant %s", what, h, want)
		}
	}
	// magic, version 5, header size, file size, lock offset and size,
	// index offset, 64 slots, arena offset and size, 16 levels, 86
	// classes, head node offset, xxhash64 of the 88 bytes before it.
	check("header layout [0, 96)", b[:hdrLayoutEnd], ""+
		"4643414c4c53484d"+"05000000"+"00100000"+"0000010000000000"+
		"0010000000000000"+"0010000000000000"+"0020000000000000"+
		"4000000000000000"+"0030000000000000"+"00d0000000000000"+
		"10000000"+"56000000"+"0030000000000000"+"7df8d6634c166284")
	// generation 1; active index buffer 0, mask 63; write sequence 2;
	// bump 0x30e0; 1 node; 0xe0 bytes used; 0 free; 1 live slot; 0
	// tombstones; 1 write; 0 repairs.
	check("header counters [128, 256)", b[hdrGenOff:hdrRepairsOff+wordSize], ""+
		"0100000000000000"+"7e00000000000000"+"0200000000000000"+
		"0000000000000000"+"0000000000000000"+"0000000000000000"+
		"0000000000000000"+"0000000000000000"+
		"e030000000000000"+"0100000000000000"+"e000000000000000"+
		"0000000000000000"+"0100000000000000"+"0000000000000000"+
		"0100000000000000"+"0000000000000000")
	// One live slot, at keyHash&mask = 16: tag (top 24 bits of the hash)
	// 0x783023, level-1 = 0, node offset 0x30a0 >> 4.
	slots := le.Uint64(b[hdrIndexSlotsOff:])
	base := indexOffset + (le.Uint64(b[hdrIndexActOff:])&1)*slots*slotSize
	for i := uint64(0); i < slots; i++ {
		s, want := le.Uint64(b[base+i*slotSize:]), uint64(slotEmpty)
		if i == 16 {
			want = 0x783023000000030a
		}
		if s != want {
			t.Errorf("index slot %d = %#016x, want %#016x", i, s, want)
		}
	}
	// The node: block header (size 0x40, kind 2, 0xB1), keyHash("key-a"),
	// valRef (the inline record at 0x30d0), meta (key length 5, level 1,
	// inline capacity 8), next[0] = 0, the key padded to 8, the value
	// record (length 7, low 32 bits of xxhash64("value-1")), the value
	// padded to 8.
	head := le.Uint64(b[hdrHeadOffOff:])
	node := le.Uint64(b[head+nodeNextOff:])
	if node != 0x30a0 {
		t.Fatalf("first node at %#x, want 0x30a0", node)
	}
	check("node", b[node:node+blockSize(le.Uint64(b[node:]))], ""+
		"40000000020000b1"+"100a1f842a233078"+"d030000000000000"+
		"0500010008000000"+"0000000000000000"+"6b65792d61000000"+
		"070000006ce9ea31"+"76616c75652d3100")
}
