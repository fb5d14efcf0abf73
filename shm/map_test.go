package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fastcall/wire"

	"github.com/cespare/xxhash/v2"
)

// testDir returns a scratch directory, under /dev/shm when it exists.
func testDir(t testing.TB) string {
	t.Helper()
	base := ""
	if st, err := os.Stat(DefaultDir); err == nil && st.IsDir() {
		base = DefaultDir
	}
	d, err := os.MkdirTemp(base, "shmtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func mustCreate(t testing.TB, size int64) (*Map, string) {
	t.Helper()
	p := filepath.Join(testDir(t), "m")
	m, err := Create(p, size, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, p
}

// putKeys puts the n keys numberedKey(0) to numberedKey(n-1), each with
// value val.
func putKeys(t testing.TB, m *Map, n int, val string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := m.Put(numberedKey(i), []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
}

// numberedKey is key number i of putKeys: "key-00", "key-01", ...
func numberedKey(i int) []byte { return []byte(fmt.Sprintf("key-%02d", i)) }

func TestMapBasics(t *testing.T) {
	m, p := mustCreate(t, 1<<20)
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if _, err := Create(p, 1<<20, Options{}); !errors.Is(err, wire.EEXIST) {
		t.Fatalf("second create: %v", err)
	}
	buf := make([]byte, 64)
	for _, tc := range []struct {
		name string
		op   func() error
		want wire.Errno
	}{
		{"put a", func() error { return m.Put([]byte("a"), []byte("1")) }, wire.OK},
		{"put b", func() error { return m.Put([]byte("b"), []byte("2")) }, wire.OK},
		{"replace a", func() error { return m.Put([]byte("a"), []byte("one")) }, wire.OK},
		{"replace a again", func() error { return m.Put([]byte("a"), bytes.Repeat([]byte("x"), 50)) }, wire.OK},
		{"replace a inline", func() error { return m.Put([]byte("a"), []byte("uno")) }, wire.OK},
		{"get a", func() error {
			n, err := m.Get([]byte("a"), buf)
			if err == nil && string(buf[:n]) != "uno" {
				return wire.EFAULT
			}
			return err
		}, wire.OK},
		{"get short buffer", func() error { _, err := m.Get([]byte("a"), buf[:1]); return err }, wire.EMSGSIZE},
		{"get missing", func() error { _, err := m.Get([]byte("zz"), buf); return err }, wire.ENOENT},
		{"empty key", func() error { return m.Put(nil, []byte("x")) }, wire.EINVAL},
		{"long key", func() error { return m.Put(make([]byte, MaxKeyLen+1), nil) }, wire.EINVAL},
		{"long value", func() error { return m.Put([]byte("k"), make([]byte, MaxValueLen+1)) }, wire.EINVAL},
		{"delete b", func() error { return m.Delete([]byte("b")) }, wire.OK},
		{"delete b again", func() error { return m.Delete([]byte("b")) }, wire.ENOENT},
		{"view", func() error {
			return m.View([]byte("a"), func(v []byte) {
				if string(v) != "uno" {
					t.Errorf("view %q", v)
				}
			})
		}, wire.OK},
		{"len", func() error {
			if n, err := m.Len(); err != nil || n != 1 {
				return wire.EFAULT
			}
			return nil
		}, wire.OK},
		{"verify", m.Verify, wire.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.AsErrno(tc.op()); got != tc.want {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
	ro, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Put([]byte("x"), nil); !errors.Is(err, wire.EINVAL) {
		t.Fatalf("read-only put: %v", err)
	}
	if n, err := ro.Get([]byte("a"), buf); err != nil || string(buf[:n]) != "uno" {
		t.Fatalf("read-only get: %v", err)
	}
	if err := ro.Verify(); err != nil {
		t.Fatal(err)
	}
	// A negative Timeout is refused: it was taken and waited forever on
	// a held lock, where the lock's own timed calls read d <= 0 as "try
	// once".
	for _, o := range []Options{{Timeout: -time.Millisecond}, {Timeout: -time.Millisecond, ReadOnly: true}} {
		if m2, err := Open(p, o); !errors.Is(err, wire.EINVAL) {
			if err == nil {
				m2.Close()
			}
			t.Fatalf("Open with Timeout %v: %v, want EINVAL", o.Timeout, err)
		}
	}
	if m2, err := Create(p+"2", 1<<20, Options{Timeout: -time.Millisecond}); !errors.Is(err, wire.EINVAL) {
		if err == nil {
			m2.Close()
		}
		t.Fatalf("Create with a negative Timeout: %v, want EINVAL", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get([]byte("a"), buf); !errors.Is(err, wire.ECLOSED) {
		t.Fatalf("after close: %v", err)
	}
}

func TestRangeAndPrefix(t *testing.T) {
	m, _ := mustCreate(t, 1<<20)
	for i := 0; i < 100; i++ {
		if err := m.Put([]byte(fmt.Sprintf("k%03d", i)), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		from, to string
		prefix   bool
		want     int
		first    string
	}{
		{"all", "", "", false, 100, "k000"},
		{"window", "k010", "k020", false, 10, "k010"},
		{"between", "k0105", "k012", false, 1, "k011"},
		{"empty", "k050", "k050", false, 0, ""},
		{"prefix", "k05", "", true, 10, "k050"},
		{"prefix none", "x", "", true, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			fn := func(k, v []byte) bool { got = append(got, string(k)); return true }
			var err error
			if tc.prefix {
				err = m.Prefix([]byte(tc.from), fn)
			} else {
				var to []byte
				if tc.to != "" {
					to = []byte(tc.to)
				}
				err = m.Range([]byte(tc.from), to, fn)
			}
			if err != nil || len(got) != tc.want || tc.want > 0 && got[0] != tc.first {
				t.Fatalf("got %v (%v)", got, err)
			}
		})
	}
}

// TestFillReuse fills the map to ENOSPC, deletes, and fills again: freed
// space is reused and the map verifies throughout.
func TestFillReuse(t *testing.T) {
	m, _ := mustCreate(t, 256<<10)
	val := bytes.Repeat([]byte("v"), 64)
	fill := func(round int) int {
		n := 0
		for ; ; n++ {
			err := m.Put([]byte(fmt.Sprintf("r%d-key-%06d", round, n)), val)
			if errors.Is(err, wire.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Verify(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := fill(0)
	if first < 500 {
		t.Fatalf("only %d keys fit", first)
	}
	// A full map still answers and a failed Put changed nothing.
	if n, _ := m.Len(); n != first {
		t.Fatalf("len %d want %d", n, first)
	}
	for i := 0; i < first; i++ {
		if err := m.Delete([]byte(fmt.Sprintf("r0-key-%06d", i))); err != nil {
			t.Fatal(err)
		}
	}
	second := fill(1)
	if second < first*9/10 {
		t.Fatalf("refill %d keys, first fill %d: space not reused", second, first)
	}
	// Mixed sizes: delete the older half (adjacent blocks, which coalesce
	// once the lists run dry) and refill with larger values.
	for i := 0; i < second/2; i++ {
		if err := m.Delete([]byte(fmt.Sprintf("r1-key-%06d", i))); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("B"), 200)
	n := 0
	for ; m.Put([]byte(fmt.Sprintf("big-%06d", n)), big) == nil; n++ {
	}
	if n < second/6 {
		t.Fatalf("only %d large values fit after deleting %d small ones", n, second/2)
	}
	if err := m.Repair(); err != nil {
		t.Fatal(err)
	}
}

func TestGetAllocs(t *testing.T) {
	m, _ := mustCreate(t, 1<<20)
	key, buf := []byte("some-key"), make([]byte, 64)
	if err := m.Put(key, []byte("value")); err != nil {
		t.Fatal(err)
	}
	miss := []byte("missing")
	if a := testing.AllocsPerRun(1000, func() {
		m.Get(key, buf)
		m.Get(miss, buf)
	}); a != 0 {
		t.Fatalf("Get allocates %v per run", a)
	}
}

// TestKeyHash checks keyHash against a plain restatement of its definition
// for every short length, and that it spreads: no two of many similar keys
// share a hash, and the index tag (top 24 bits) and the low bits vary.
func TestKeyHash(t *testing.T) {
	ref := func(key []byte) uint64 {
		n := len(key)
		if n > keyHashShort {
			return xxhash.Sum64(key)
		}
		word := func(b []byte) uint64 {
			var w uint64
			for i := len(b) - 1; i >= 0; i-- {
				w = w<<8 | uint64(b[i])
			}
			return w
		}
		h := uint64(hashSeed) ^ uint64(n)
		if n < 8 {
			return hashMix(hashMix(h^word(key), hashK1), hashK2)
		}
		for i := 0; i+8 < n; i += 8 {
			h = hashMix(h^word(key[i:i+8]), hashK1)
		}
		return hashMix(hashMix(h^word(key[n-8:]), hashK1), hashK2)
	}
	for n := 0; n <= 2*keyHashShort; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		if got, want := keyHash(b), ref(b); got != want {
			t.Fatalf("len %d: keyHash %x, want %x", n, got, want)
		}
	}
	seen := map[uint64]string{}
	tags := map[uint64]bool{}
	lows := map[uint64]bool{}
	for i := 0; i < 100000; i++ {
		k := fmt.Sprintf("key-%05d", i)
		h := keyHash([]byte(k))
		if o, dup := seen[h]; dup {
			t.Fatalf("%s and %s share hash %x", o, k, h)
		}
		seen[h] = k
		tags[h>>slotTagShift] = true
		lows[h&0xffff] = true
	}
	if len(tags) < 95000 || len(lows) < 45000 {
		t.Fatalf("poor spread: %d tags, %d low 16-bit values of 100000 keys", len(tags), len(lows))
	}
}

// TestIndexFollowsKeys grows a map's index from its first 64 slots to the
// size its keys need and shrinks it again as they are deleted, while a
// second handle on the file, opened at the start, reads every key at every
// size.
func TestIndexFollowsKeys(t *testing.T) {
	m, p := mustCreate(t, 8<<20)
	rd, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	inUse := func() (Stats, uint64) {
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st, st.IndexInUse
	}
	if st, n := inUse(); n != minSlots || st.IndexSlots != 8<<20/bytesPerSlot {
		t.Fatalf("new map: %d of %d slots in use", n, st.IndexSlots)
	}
	const keys = 20000
	key := func(i int) []byte { return []byte(fmt.Sprintf("key-%06d", i)) }
	buf := make([]byte, 16)
	check := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if n, err := rd.Get(key(i), buf); err != nil || string(buf[:n]) != fmt.Sprint(i) {
				t.Fatalf("key %d: %q %v", i, buf[:n], err)
			}
		}
	}
	sizes := map[uint64]bool{}
	for i := 0; i < keys; i++ {
		if err := m.Put(key(i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if _, n := inUse(); !sizes[n] {
			sizes[n] = true
			check(0, i+1)
		}
	}
	// 20,000 keys: 32,768 slots hold them at a load of 0.61 (the last
	// growth, at 12,289 keys, doubled 16,384).
	if _, n := inUse(); n != 32768 || len(sizes) != 10 {
		t.Fatalf("%d keys: %d slots in use, %d sizes seen", keys, n, len(sizes))
	}
	for i := 0; i < keys-100; i++ {
		if err := m.Delete(key(i)); err != nil {
			t.Fatal(err)
		}
	}
	check(keys-100, keys)
	if _, err := rd.Get(key(0), buf); !errors.Is(err, wire.ENOENT) {
		t.Fatalf("deleted key: %v", err)
	}
	// The last rebuild came after more than a quarter of its slots had
	// become tombstones; 2,048 slots (a rebuild for up to 1,024 keys, at
	// most 512 deletes before the end) is the most that allows.
	st, n := inUse()
	if n > 2048 || st.IndexLive != 100 {
		t.Fatalf("100 keys left: %d slots in use, %d live", n, st.IndexLive)
	}
	if err := m.Verify(); err != nil {
		t.Fatal(err)
	}
}
