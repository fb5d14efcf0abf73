package wire

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// TestKeyedTagLengthAttacks: GHASH pads M with zeros to whole blocks, so
// M and M followed by zeros up to the block boundary share every data
// block; only the length block tells them apart. A keyed datagram
// extended with zero bytes (declared length fixed up, tag kept), or cut
// short, must be rejected as a forgery, never reach the parameters; one
// extended without fixing the declared length is refused on length.
func TestKeyedTagLengthAttacks(t *testing.T) {
	c := mustCodec(t, MaxDatagram, testKey)
	r := rand.New(rand.NewPCG(11, 12))
	var p Packet
	for _, size := range []int{0, 1, 12, 13, 14, 28, 100, 1000} {
		dg := keyedDatagram(t, c, r, size)
		if rs := c.Decode(&p, dg); rs != ReasonNone {
			t.Fatalf("payload %d: intact: %v", size, rs)
		}
		// Zeros to the next block boundary, and one and two whole
		// blocks past it.
		pad := (16 - len(dg)%16) % 16
		for _, k := range []int{1, pad, pad + 16, pad + 32} {
			if k == 0 {
				continue
			}
			b := append(append([]byte(nil), dg...), make([]byte, k)...)
			put16(b[OffPLen:], uint16(len(b)-HeaderSize))
			if rs := c.Decode(&p, b); rs != ReasonTag || p.Verified {
				t.Fatalf("payload %d + %d zeros, length fixed: %v (verified %v), want tag", size, k, rs, p.Verified)
			}
			b = append(append([]byte(nil), dg...), make([]byte, k)...)
			if rs := c.Decode(&p, b); rs != ReasonLength {
				t.Fatalf("payload %d + %d zeros, length kept: %v, want length", size, k, rs)
			}
		}
		// Cut: the segment keeps its declared parameter count, so the
		// header parses whenever the count still fits.
		for _, k := range []int{1, 16} {
			if len(dg)-k < HeaderSize+ParamHdrSize {
				continue
			}
			b := append([]byte(nil), dg[:len(dg)-k]...)
			put16(b[OffPLen:], uint16(len(b)-HeaderSize))
			if rs := c.Decode(&p, b); rs != ReasonTag || p.Verified {
				t.Fatalf("payload %d cut by %d, length fixed: %v (verified %v), want tag", size, k, rs, p.Verified)
			}
		}
	}
}

// TestKeyedTagOldVersion: a datagram of protocol version 1 (whose tag was
// HMAC-SHA256 cut to 16 bytes) is refused on its version by a keyed and
// by a checksum codec, before any tag is computed, and is never marked
// verified (so never answered). This holds even when the tag field holds
// a valid version-2 tag of the same bytes.
func TestKeyedTagOldVersion(t *testing.T) {
	keyed := mustCodec(t, 0, testKey)
	plain := mustCodec(t, 0, nil)
	r := rand.New(rand.NewPCG(13, 14))
	var p Packet
	for _, c := range []*Codec{keyed, plain} {
		b := keyedDatagram(t, c, r, 40)
		b[OffVersion] = 1
		for _, recv := range []*Codec{keyed, plain} {
			if rs := recv.Decode(&p, b); rs != ReasonVersion || p.Verified || rs.Errno() != EPROTO {
				t.Fatalf("version 1 (auth %v) at auth %v: %v (verified %v)", c.Authenticated(), recv.Authenticated(), rs, p.Verified)
			}
		}
		// Sealed by the version-2 codec with the version byte already 1.
		c.Reseal(b)
		if rs := c.Decode(&p, b); rs != ReasonVersion || p.Verified {
			t.Fatalf("version 1 resealed (auth %v): %v (verified %v)", c.Authenticated(), rs, p.Verified)
		}
	}
}

// TestKeyedTagLargest: a keyed datagram of exactly MaxDatagram bytes
// seals to the tag docs/PROTOCOL.md defines and verifies without
// allocating once the scratch has grown; one byte more is refused by the
// encoder and the decoder.
func TestKeyedTagLargest(t *testing.T) {
	c := mustCodec(t, MaxDatagram, testKey)
	r := rand.New(rand.NewPCG(15, 16))
	dg := keyedDatagram(t, c, r, MaxDatagram-HeaderSize-ParamHdrSize)
	if len(dg) != MaxDatagram {
		t.Fatalf("datagram %d bytes, want %d", len(dg), MaxDatagram)
	}
	if got := refTag(t, testKey, dg); !bytes.Equal(got[:], dg[OffTag:HeaderSize]) {
		t.Fatalf("codec tag %x, first principles %x", dg[OffTag:HeaderSize], got)
	}
	var p Packet
	if allocs := testing.AllocsPerRun(20, func() {
		if rs := c.Decode(&p, dg); rs != ReasonNone {
			panic(rs)
		}
	}); allocs != 0 {
		t.Fatalf("%v allocs per verify of the largest datagram", allocs)
	}
	big := make([]byte, MaxDatagram+1)
	var ps Params
	ps.Reset(make([]byte, MaxDatagram))
	ps.Bytes(make([]byte, MaxDatagram-HeaderSize-ParamHdrSize+1))
	h := sampleHeader()
	if _, e := c.EncodeParams(big, &h, &ps); e != EMSGSIZE {
		t.Fatalf("encode of %d bytes: %v, want EMSGSIZE", MaxDatagram+1, e)
	}
	copy(big, dg)
	put16(big[OffPLen:], uint16(len(big)-HeaderSize))
	if rs := c.Decode(&p, big); rs != ReasonTooBig || p.Verified {
		t.Fatalf("decode of %d bytes: %v, want too-big", len(big), rs)
	}
}

// TestKeyedClonesConcurrent: clones of a codec in a rotation window (two
// keys) seal and verify at once, each on its own goroutine, datagrams
// under both keys and one shared datagram; every result is right (run
// under -race: no clone shares scratch or cipher state with another).
// Re-keying one clone changes neither its parent nor its siblings.
func TestKeyedClonesConcurrent(t *testing.T) {
	old := []byte("old-cluster-key-0000000000000000")
	parent := mustCodec(t, 0, testKey)
	if err := parent.SetKeys(testKey, old); err != nil {
		t.Fatal(err)
	}
	shared := keyedDatagram(t, parent, rand.New(rand.NewPCG(17, 18)), 300)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		c := parent.Clone()
		snd := mustCodec(t, 0, old)
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 19))
			var p Packet
			for i := 0; i < 200; i++ {
				cur, ok1 := sealedDatagram(c, r, r.IntN(1200))
				prev, ok2 := sealedDatagram(snd, r, r.IntN(1200))
				if !ok1 || !ok2 {
					t.Errorf("goroutine %d: encode failed", g)
					return
				}
				bad := append([]byte(nil), cur...)
				bad[len(bad)-1] ^= 1
				for _, tc := range []struct {
					b    []byte
					want Reason
				}{{cur, ReasonNone}, {prev, ReasonNone}, {shared, ReasonNone}, {bad, ReasonTag}} {
					if rs := c.Decode(&p, tc.b); rs != tc.want {
						t.Errorf("goroutine %d: %v, want %v", g, rs, tc.want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	lone := parent.Clone()
	if err := lone.SetKeys(old, nil); err != nil {
		t.Fatal(err)
	}
	var p Packet
	if rs := lone.Decode(&p, shared); rs != ReasonTag {
		t.Fatalf("re-keyed clone accepts its parent's key: %v", rs)
	}
	if rs := parent.Decode(&p, shared); rs != ReasonNone {
		t.Fatalf("parent after a clone was re-keyed: %v", rs)
	}
}

// sealedDatagram is keyedDatagram for a goroutine other than the test's:
// it reports failure instead of ending the test.
func sealedDatagram(c *Codec, r *rand.Rand, n int) ([]byte, bool) {
	var p Params
	p.Reset(make([]byte, ParamHdrSize+n))
	p.Bytes(make([]byte, n))
	h := sampleHeader()
	h.CallID = r.Uint64()
	dg := make([]byte, HeaderSize+p.Len())
	k, e := c.EncodeParams(dg, &h, &p)
	return dg[:k], e == OK
}

// fipsChildEnv marks the re-executed test binary of TestKeyedTagFIPSOnly.
const fipsChildEnv = "FASTCALL_WIRE_FIPS_CHILD"

// TestKeyedTagFIPSOnly: in Go's FIPS 140-only mode (GODEBUG=fips140=only)
// the standard library refuses GCM with a nonce the caller chooses, so
// the keyed tag cannot be computed. A codec then refuses a key with
// ENOSYS (not supported here), not EINVAL (which blames the key), and
// never falls back to checksum mode. The test re-executes its binary in
// that mode, which is fixed at process start.
func TestKeyedTagFIPSOnly(t *testing.T) {
	if os.Getenv(fipsChildEnv) == "1" {
		if _, err := NewCodec(0, testKey); err != ENOSYS {
			t.Fatalf("NewCodec with a key in FIPS 140-only mode: %v, want ENOSYS", err)
		}
		c := mustCodec(t, 0, nil)
		if err := c.SetKeys(testKey, nil); err != ENOSYS || c.Authenticated() {
			t.Fatalf("SetKeys in FIPS 140-only mode: %v, authenticated %v", err, c.Authenticated())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeyedTagFIPSOnly$", "-test.count=1")
	cmd.Env = append(os.Environ(), fipsChildEnv+"=1", "GODEBUG=fips140=only")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child in FIPS 140-only mode: %v\n%s", err, out)
	}
}
