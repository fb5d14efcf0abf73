package shm

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// keyHash is the hash of a key: the node's hash word (the key checksum that
// Verify checks), the index slot's position and its tag. It is part of the
// file format.
//
// Keys of up to keyHashShort bytes, the common case, are hashed here: each
// 8-byte word (the last one may overlap the one before, a key shorter than
// 8 bytes is one word) is xored into the state, which is then multiplied
// by a constant into 128 bits, and the two halves xored (the mixing step of
// wyhash). For a 24-byte key that is about 50 instructions against about 65
// for xxhash64, whose setup and call through its assembly wrapper dominate
// at that length; Get's speed depends on its instruction count (see
// docs/SHM.md). Longer keys use xxhash64.
func keyHash(key []byte) uint64 {
	n := uint64(len(key))
	if n-wordSize > keyHashShort-wordSize {
		return keyHashOther(key)
	}
	// 8 to 32 bytes, straight: the words at 0, 8 and 16 that lie wholly
	// before the last word, then the last word.
	h := hashMix(hashSeed^n^bytesWord(key, 0), hashK1)
	if n > wordSize {
		if n > 2*wordSize {
			h = hashMix(h^bytesWord(key, wordSize), hashK1)
			if n > 3*wordSize {
				h = hashMix(h^bytesWord(key, 2*wordSize), hashK1)
			}
		}
		h = hashMix(h^bytesWord(key, n-wordSize), hashK1)
	}
	return hashMix(h, hashK2)
}

// keyHashOther is keyHash for keys shorter than a word or longer than
// keyHashShort.
func keyHashOther(key []byte) uint64 {
	n := uint64(len(key))
	if n > keyHashShort {
		return xxhash.Sum64(key)
	}
	var w uint64
	for i := uint64(0); i < n; i++ {
		w |= uint64(key[i]) << (8 * i)
	}
	return hashMix(hashMix(hashSeed^n^w, hashK1), hashK2)
}

// hashMix multiplies a by k into 128 bits and folds the halves.
func hashMix(a, k uint64) uint64 {
	hi, lo := bits.Mul64(a, k)
	return hi ^ lo
}

// keyHash's constants (wyhash's secret words) and its short-key limit.
const (
	hashSeed     = 0xa0761d6478bd642f
	hashK1       = 0xe7037ed1a0b428db
	hashK2       = 0x8ebc6af09c88c6e3
	keyHashShort = 32
)
