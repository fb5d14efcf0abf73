package shm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"fastcall/wire"
)

// TestGetSeq checks the lock-free lookup against the locked one (keys on
// its straight path and keys it hands to getSeqSlow, values in a block of
// their own), and that it gives way (errSeqBusy) while the write sequence
// is odd or the file is superseded.
func TestGetSeq(t *testing.T) {
	r := newHeapRegion(t, MinSize, 0)
	keys := [][]byte{[]byte("a"), []byte("short"), []byte("exactly8"), []byte("a key of twenty-four b."), bytes.Repeat([]byte("k"), 100)}
	for i, k := range keys {
		if err := r.putLocked(k, bytes.Repeat([]byte{byte('A' + i)}, 10*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 64)
	for _, k := range append(keys, []byte("absent"), []byte("exactly9"), []byte("shor")) {
		h := keyHash(k)
		wn, werr := r.getInto(k, big, h)
		want := append([]byte(nil), big[:wn]...)
		gn, ge := r.getSeq(k, big)
		if ge == errSeqBusy || ge == errSeqMoved {
			t.Fatalf("%q: busy with an even sequence", k)
		}
		if gn != wn || wire.AsErrno(werr) != ge || werr == nil && !bytes.Equal(big[:gn], want) {
			t.Fatalf("%q: getSeq %d %v, getInto %d %v", k, gn, ge, wn, werr)
		}
		// A dst too short: EMSGSIZE with the length, dst untouched.
		if werr == nil && wn > 1 {
			small := []byte{0xEE}
			if n, e := r.getSeq(k, small); e != wire.EMSGSIZE || n != wn || small[0] != 0xEE {
				t.Fatalf("%q: short dst: %d %v %x", k, n, e, small)
			}
		}
	}
	// A value that outgrows its node's inline space lives in a block of
	// its own, which getSeq reaches through the node's valRef; a later
	// value that fits goes back inline, where getSeq looks first.
	wide := make([]byte, 4096)
	for _, k := range keys[1:4] {
		n, ok := r.find(k, keyHash(k))
		if !ok {
			t.Fatalf("%q: not indexed", k)
		}
		for _, v := range [][]byte{bytes.Repeat([]byte("x"), int(n.icap)+1), []byte("inline"), []byte("again")} {
			if err := r.putLocked(k, v); err != nil {
				t.Fatal(err)
			}
			if inline := load64(r.mem, n.off+nodeValRefOff) == n.recOff(); inline != (uint64(len(v)) <= n.icap) {
				t.Fatalf("%q: value of %d bytes, inline space %d: inline %v", k, len(v), n.icap, inline)
			}
			if got, e := r.getSeq(k, wide); e != wire.OK || !bytes.Equal(wide[:got], v) {
				t.Fatalf("%q: %q %v, want %q", k, wide[:got], e, v)
			}
		}
	}
	r.beginWriteLocked()
	if _, e := r.getSeq(keys[1], big); e != errSeqBusy {
		t.Fatalf("odd sequence: %v", e)
	}
	r.endWriteLocked()
	if _, e := r.getSeq(keys[1], big); e != wire.OK {
		t.Fatalf("even sequence: %v", e)
	}
	r.setHdr(hdrGenOff, r.generation()|genSuperseded)
	if _, e := r.getSeq(keys[1], big); e != errSeqBusy {
		t.Fatalf("superseded: %v", e)
	}
}

// TestGetDuringWrites runs Gets without the lock against a writer in the
// same process that replaces, deletes and inserts values that carry their
// own checksum, with every size class move (inline, external, freed and
// reused blocks, index rebuilds): every value a Get returns is whole.
func TestGetDuringWrites(t *testing.T) {
	m, _ := mustCreate(t, 1<<20)
	const keys = 200
	writes := 20000
	if testing.Short() || raceEnabled {
		writes = 4000
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 3)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < writes; i++ {
			k := procKey(rng.IntN(keys))
			var err error
			if rng.IntN(4) == 0 {
				err = m.Delete(k)
				if errors.Is(err, wire.ENOENT) {
					err = nil
				}
			} else {
				err = m.Put(k, sealedValue(rng))
			}
			if err != nil {
				errs <- fmt.Errorf("write %d: %v", i, err)
				return
			}
		}
	}()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, sumSize+maxPayload)
			for {
				select {
				case <-done:
					return
				default:
				}
				n, err := m.Get(procKey(rng.IntN(keys)), buf)
				if err == nil && !sealedOK(buf[:n]) {
					errs <- fmt.Errorf("reader %d: torn value of %d bytes", g, n)
					return
				}
				if err != nil && !errors.Is(err, wire.ENOENT) {
					errs <- fmt.Errorf("reader %d: %v", g, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	strictVerify(t, m)
}

// TestGetSeqScribble has a writer scribble over a value in place, inside
// an odd write sequence, and put it back, over and over, while readers in
// other goroutines run the lock-free lookup: a reader either gives way or
// returns the whole value, never the scribble. (Real writers never rewrite
// a record in place; reusing a freed block comes to the same thing.) The
// region is the file mapping, which the race detector does not watch.
func TestGetSeqScribble(t *testing.T) {
	m, _ := mustCreate(t, 1<<20)
	key := []byte("scribbled")
	rng := rand.New(rand.NewPCG(3, 3))
	val := sealedValue(rng)
	for len(val) < 64 {
		val = sealedValue(rng)
	}
	if err := m.Put(key, val); err != nil {
		t.Fatal(err)
	}
	r := m.cur.Load().r
	n, _ := r.find(key, keyHash(key))
	data := r.mem[load64(r.mem, n.off+nodeValRefOff)+recHdrSize:][:len(val)]
	rounds := 20000
	if testing.Short() || raceEnabled {
		rounds = 2000
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < rounds; i++ {
			r.beginWriteLocked()
			for j := range data {
				data[j] ^= 0x5A
			}
			for j := range data {
				data[j] ^= 0x5A
			}
			r.endWriteLocked()
		}
	}()
	var seen, busy, bad int
	buf := make([]byte, len(val))
	for {
		select {
		case <-done:
			wg.Wait()
			if bad != 0 {
				t.Fatalf("%d of %d reads returned a scribbled value", bad, seen)
			}
			t.Logf("%d reads, %d gave way, gomaxprocs %d", seen, busy, runtime.GOMAXPROCS(0))
			return
		default:
		}
		n, e := r.getSeq(key, buf)
		switch {
		case e == errSeqBusy || e == errSeqMoved:
			busy++
		case e != wire.OK || n != len(val) || !sealedOK(buf[:n]):
			bad++
			seen++
		default:
			seen++
		}
	}
}

// TestGetDamagedValRef builds a damaged node whose key ends at the arena's
// end, so that its inline record would lie outside it, and gives it value
// references that name no record. Both lookups must answer EPROTO: no
// reference, however damaged, may pass for the inline record.
func TestGetDamagedValRef(t *testing.T) {
	r := newHeapRegion(t, MinSize, 0)
	key := []byte("exactly8")
	h := keyHash(key)
	level := uint64(1)
	node := r.arenaEnd - nodeKeyOff(level) - uint64(len(key))
	store64(r.mem, node+nodeHashOff, h)
	store64(r.mem, node+nodeMetaOff, nodeMeta(uint64(len(key)), level, 0))
	copy(r.mem[node+nodeKeyOff(level):], key)
	base, mask := r.activeIndex()
	store64(r.mem, base+(h&mask)*slotSize, slotWord(h, node, level))
	buf := make([]byte, 16)
	for _, ref := range []uint64{^uint64(0), 0, 1, 8, r.arenaEnd, align(r.arenaEnd+1, wordSize)} {
		store64(r.mem, node+nodeValRefOff, ref)
		if v, e := r.getValue(key, h); e != wire.EPROTO {
			t.Errorf("valRef %#x: getValue %q %v, want EPROTO", ref, v, e)
		}
		if n, e := r.getSeq(key, buf); e != wire.EPROTO {
			t.Errorf("valRef %#x: getSeq %d %v, want EPROTO", ref, n, e)
		}
	}
}
