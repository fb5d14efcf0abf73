package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
)

// refTag computes the keyed tag of datagram b as docs/PROTOCOL.md states
// it, from first principles: HKDF-SHA256 for the two keys, GHASH written
// out bit by bit (SP 800-38D, algorithm 1), the GCM mask E(Kg, J0), and
// AES under Kp. It shares nothing with codec.go.
func refTag(t testing.TB, key, b []byte) [16]byte {
	kg, err := hkdf.Key(sha256.New, key, nil, "fastcall tag ghash", 32)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := hkdf.Key(sha256.New, key, nil, "fastcall tag prp", 32)
	if err != nil {
		t.Fatal(err)
	}
	g, err := aes.NewCipher(kg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := aes.NewCipher(kp)
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(nil), b...)
	clear(m[44:60])
	var h, j0, mask, x, out [16]byte
	g.Encrypt(h[:], h[:])
	j0[11], j0[15] = 1, 1 // nonce 00..01 (12 bytes), then counter 1
	g.Encrypt(mask[:], j0[:])
	for off := 0; off < len(m); off += 16 {
		var blk [16]byte
		copy(blk[:], m[off:])
		x = refGFMul(refXor(x, blk), h)
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], uint64(len(m))*8) // additional data bits; no ciphertext
	x = refGFMul(refXor(x, lens), h)
	t1 := refXor(x, mask)
	p.Encrypt(out[:], t1[:])
	return out
}

func refXor(a, b [16]byte) [16]byte {
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}

// refGFMul multiplies in GCM's GF(2^128): bit 0 is the high bit of byte 0.
func refGFMul(x, y [16]byte) [16]byte {
	var z [16]byte
	v := y
	for i := 0; i < 128; i++ {
		if x[i/8]&(0x80>>(i%8)) != 0 {
			z = refXor(z, v)
		}
		lsb := v[15] & 1
		for j := 15; j > 0; j-- {
			v[j] = v[j]>>1 | v[j-1]<<7
		}
		v[0] >>= 1
		if lsb != 0 {
			v[0] ^= 0xe1
		}
	}
	return z
}

// keyedDatagram encodes a request whose segment is one bytes parameter of
// n random bytes.
func keyedDatagram(t testing.TB, c *Codec, r *rand.Rand, n int) []byte {
	val := make([]byte, n)
	for i := range val {
		val[i] = byte(r.Uint32())
	}
	var p Params
	p.Reset(make([]byte, ParamHdrSize+n))
	p.Bytes(val)
	h := sampleHeader()
	h.CallID = r.Uint64()
	dg := make([]byte, HeaderSize+p.Len())
	k, e := c.EncodeParams(dg, &h, &p)
	if e != OK {
		t.Fatalf("encode %d bytes: %v", n, e)
	}
	return dg[:k]
}

// TestKeyedTagFirstPrinciples recomputes the tag of the spec's keyed
// vectors and of datagrams of many lengths (whole and partial GHASH
// blocks) with refTag, and checks the GCM call in refTag's description
// against the standard library's GCM.
func TestKeyedTagFirstPrinciples(t *testing.T) {
	n := 0
	for _, v := range readDocVectors(t) {
		if v.fields["key"] == "none" {
			continue
		}
		n++
		if got := refTag(t, []byte(v.fields["key"]), v.bytes); !bytes.Equal(got[:], v.bytes[OffTag:HeaderSize]) {
			t.Fatalf("%s: spec tag %x, first principles %x", v.fields["name"], v.bytes[OffTag:HeaderSize], got)
		}
	}
	if n < 2 {
		t.Fatalf("spec has %d keyed vectors, want 2", n)
	}
	c := mustCodec(t, MaxDatagram, testKey)
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 13, 29, 61, 64, 100, 1024, 4000, 65000} {
		dg := keyedDatagram(t, c, r, size)
		if got := refTag(t, testKey, dg); !bytes.Equal(got[:], dg[OffTag:HeaderSize]) {
			t.Fatalf("payload %d: codec tag %x, first principles %x", size, dg[OffTag:HeaderSize], got)
		}
	}
	// The spec's shortcut: GHASH masked by E(Kg, J0) is GCM's tag of an
	// empty plaintext with M as additional data.
	kg, _ := hkdf.Key(sha256.New, testKey, nil, "fastcall tag ghash", 32)
	blk, _ := aes.NewCipher(kg)
	gcm, _ := cipher.NewGCM(blk)
	dg := keyedDatagram(t, c, r, 77)
	m := append([]byte(nil), dg...)
	clear(m[OffTag:HeaderSize])
	t1 := gcm.Seal(nil, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, nil, m)
	kp, _ := hkdf.Key(sha256.New, testKey, nil, "fastcall tag prp", 32)
	prp, _ := aes.NewCipher(kp)
	var want [16]byte
	prp.Encrypt(want[:], t1)
	if got := refTag(t, testKey, dg); got != want {
		t.Fatalf("bitwise GHASH %x, GCM %x", got, want)
	}
}

// TestKeyedTagRejectsFlips flips every bit of the covered bytes (header
// before the tag, every segment byte) and of the tag: each copy must be
// rejected.
func TestKeyedTagRejectsFlips(t *testing.T) {
	c := mustCodec(t, 0, testKey)
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 64, 1024} {
		dg := keyedDatagram(t, c, r, size)
		var p Packet
		if rs := c.Decode(&p, dg); rs != ReasonNone {
			t.Fatalf("payload %d: intact datagram: %v", size, rs)
		}
		for i := range dg {
			for bit := 0; bit < 8; bit++ {
				b := append([]byte(nil), dg...)
				b[i] ^= 1 << bit
				if rs := c.Decode(&p, b); rs == ReasonNone {
					t.Fatalf("payload %d: byte %d bit %d flipped, accepted", size, i, bit)
				}
			}
		}
	}
}

// TestKeyedTagKeys: a datagram sealed under another key is rejected; one
// sealed under the previous key is accepted during a rotation, by verify's
// second try, and no longer after it; a datagram whose tag is only the
// GCM step under Kg (without AES under Kp) is rejected.
func TestKeyedTagKeys(t *testing.T) {
	other := []byte("another-cluster-key-000000000000")
	r := rand.New(rand.NewPCG(5, 6))
	recv := mustCodec(t, 0, testKey)
	var p Packet
	for _, size := range []int{0, 64, 1024} {
		dg := keyedDatagram(t, mustCodec(t, 0, other), r, size)
		if rs := recv.Decode(&p, dg); rs != ReasonTag {
			t.Fatalf("payload %d under another key: %v, want tag", size, rs)
		}
		if err := recv.SetKeys(testKey, other); err != nil {
			t.Fatal(err)
		}
		if rs := recv.Decode(&p, dg); rs != ReasonNone {
			t.Fatalf("payload %d under the previous key: %v", size, rs)
		}
		if rs := recv.Decode(&p, keyedDatagram(t, recv, r, size)); rs != ReasonNone {
			t.Fatalf("payload %d under the current key during rotation: %v", size, rs)
		}
		if err := recv.SetKeys(testKey, nil); err != nil {
			t.Fatal(err)
		}
		if rs := recv.Decode(&p, dg); rs != ReasonTag {
			t.Fatalf("payload %d under the old key after rotation: %v", size, rs)
		}

		// GCM step only: T1 = GCM(Kg).Seal(nonce, nil, M), no Kp.
		b := keyedDatagram(t, recv, r, size)
		kg, _ := hkdf.Key(sha256.New, testKey, nil, "fastcall tag ghash", 32)
		blk, _ := aes.NewCipher(kg)
		gcm, _ := cipher.NewGCM(blk)
		clear(b[OffTag:HeaderSize])
		t1 := gcm.Seal(nil, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, nil, b)
		copy(b[OffTag:], t1)
		if rs := recv.Decode(&p, b); rs != ReasonTag {
			t.Fatalf("payload %d with the GCM step alone as tag: %v, want tag", size, rs)
		}
	}
}

// TestKeyedDecodeLeavesInput: Decode never writes into the datagram, so
// goroutines with their own codecs may decode one buffer at once (run
// under -race).
func TestKeyedDecodeLeavesInput(t *testing.T) {
	c := mustCodec(t, 0, testKey)
	dg := keyedDatagram(t, c, rand.New(rand.NewPCG(7, 8)), 1024)
	want := append([]byte(nil), dg...)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		d := c.Clone()
		wg.Go(func() {
			var p Packet
			for i := 0; i < 100; i++ {
				if rs := d.Decode(&p, dg); rs != ReasonNone {
					t.Errorf("decode: %v", rs)
					return
				}
			}
		})
	}
	wg.Wait()
	if !bytes.Equal(dg, want) {
		t.Fatal("Decode changed its input")
	}
}

// TestKeyedTagAllocs: sealing and verifying allocate nothing in steady
// state, at both payload sizes and on the previous-key path.
func TestKeyedTagAllocs(t *testing.T) {
	old := []byte("old-cluster-key-0000000000000000")
	snd := mustCodec(t, 0, old)
	c := mustCodec(t, 0, testKey)
	if err := c.SetKeys(testKey, old); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, size := range []int{64, 1024} {
		cur := keyedDatagram(t, c, r, size)
		prev := keyedDatagram(t, snd, r, size)
		var p Packet
		allocs := testing.AllocsPerRun(200, func() {
			c.Reseal(cur)
			if rs := c.Decode(&p, cur); rs != ReasonNone {
				panic(rs)
			}
			if rs := c.Decode(&p, prev); rs != ReasonNone {
				panic(rs)
			}
		})
		if allocs != 0 {
			t.Fatalf("payload %d: %v allocs per seal and two verifies", size, allocs)
		}
	}
}

// TestKeyedDecodeOwned: DecodeOwned gives Decode's verdict on intact
// datagrams, on every single-bit flip, under another key and under the
// previous key during a rotation, and leaves every datagram as it found
// it, accepted or not; it allocates nothing.
func TestKeyedDecodeOwned(t *testing.T) {
	other := []byte("another-cluster-key-000000000000")
	c := mustCodec(t, 0, testKey)
	r := rand.New(rand.NewPCG(11, 12))
	check := func(size int, b []byte) {
		t.Helper()
		var p, q Packet
		want := c.Decode(&p, b)
		keep := append([]byte(nil), b...)
		if got := c.DecodeOwned(&q, b); got != want {
			t.Fatalf("payload %d: DecodeOwned %v, Decode %v", size, got, want)
		}
		if !bytes.Equal(b, keep) {
			t.Fatalf("payload %d: DecodeOwned changed its input", size)
		}
	}
	for _, size := range []int{0, 64, 1024} {
		dg := keyedDatagram(t, c, r, size)
		var p Packet
		if rs := c.DecodeOwned(&p, dg); rs != ReasonNone || !p.Verified {
			t.Fatalf("payload %d: intact datagram: %v", size, rs)
		}
		for i := range dg {
			for bit := 0; bit < 8; bit++ {
				b := append([]byte(nil), dg...)
				b[i] ^= 1 << bit
				check(size, b)
			}
		}
		prev := keyedDatagram(t, mustCodec(t, 0, other), r, size)
		check(size, prev)
		if err := c.SetKeys(testKey, other); err != nil {
			t.Fatal(err)
		}
		check(size, prev)
		if rs := c.DecodeOwned(&p, prev); rs != ReasonNone {
			t.Fatalf("payload %d under the previous key: %v", size, rs)
		}
		if err := c.SetKeys(testKey, nil); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(200, func() {
			if rs := c.DecodeOwned(&p, dg); rs != ReasonNone {
				panic(rs)
			}
		})
		if allocs != 0 {
			t.Fatalf("payload %d: %v allocs per DecodeOwned", size, allocs)
		}
	}
}
