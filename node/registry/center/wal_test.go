package center

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// openTestLog opens the log in dir on the host's disk, fsyncing every
// write; apply is called for each record recovered (nil: none is looked
// at). A failure to open ends the test.
func openTestLog(t testing.TB, dir string, apply func(key string, rec []byte)) *logFile {
	t.Helper()
	if apply == nil {
		apply = func(string, []byte) {}
	}
	l, err := openLog(OSDisk{}, registry.RandomID, dir, FsyncAlways, apply)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// kvRecord returns a KV record at version v.
func kvRecord(v uint64, val string) []byte {
	return sdk.AppendRecord(nil, &sdk.Record{Kind: sdk.KindKV, Version: v, Body: []byte(val)})
}

func TestLogTornTail(t *testing.T) {
	type cut struct {
		name  string
		mod   func(b []byte) []byte
		whole int // records expected back
	}
	cuts := []cut{
		{"intact", func(b []byte) []byte { return b }, 10},
		{"half-header", func(b []byte) []byte { return b[:len(b)-len(lastFrame)+5] }, 9},
		{"half-body", func(b []byte) []byte { return b[:len(b)-3] }, 9},
		{"flipped-byte", func(b []byte) []byte { b[len(b)-2] ^= 0xFF; return b }, 9},
		{"garbage-appended", func(b []byte) []byte { return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13) }, 10},
		{"zeros-appended", func(b []byte) []byte { return append(b, make([]byte, 64)...) }, 10},
		{"header-only", func(b []byte) []byte { return b[:logHdrSize] }, 0},
		{"torn-header", func(b []byte) []byte { return b[:3] }, 0},
	}
	for _, c := range cuts {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, nil)
			for i := 0; i < 10; i++ {
				pos, err := l.append(fmt.Sprintf("kv/k%d", i), kvRecord(uint64(2*i+2), "value"))
				if err != nil {
					t.Fatal(err)
				}
				if err := l.syncTo(pos); err != nil {
					t.Fatal(err)
				}
			}
			l.close()
			path := filepath.Join(dir, LogName)
			b, _ := os.ReadFile(path)
			os.WriteFile(path, c.mod(b), 0o644)
			got := map[string]bool{}
			l2 := openTestLog(t, dir, func(k string, rec []byte) {
				var r sdk.Record
				if sdk.ParseRecord(rec, &r) != 0 {
					t.Fatalf("applied a bad record for %s", k)
				}
				got[k] = true
			})
			if len(got) != c.whole {
				t.Fatalf("recovered %d records, want %d", len(got), c.whole)
			}
			for i := 0; i < c.whole; i++ {
				if !got[fmt.Sprintf("kv/k%d", i)] {
					t.Fatalf("record %d missing", i)
				}
			}
			// The cut tail is gone: appending and reopening again works.
			if _, err := l2.append("kv/after", kvRecord(2, "x")); err != nil {
				t.Fatal(err)
			}
			l2.close()
			n := 0
			l3 := openTestLog(t, dir, func(string, []byte) { n++ })
			l3.close()
			if n != c.whole+1 || l3.tornBytes != 0 {
				t.Fatalf("after reopen: %d records, torn %d", n, l3.tornBytes)
			}
		})
	}
}

// lastFrame is the frame of the tenth record of TestLogTornTail.
var lastFrame = appendFrame(nil, "kv/k9", kvRecord(20, "value"))

func TestSnapshotAndLogRecover(t *testing.T) {
	dir := t.TempDir()
	store := map[string][]byte{}
	l := openTestLog(t, dir, nil)
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("kv/%d", i%7)
		rec := kvRecord(uint64(2*i+2), fmt.Sprint(i))
		store[k] = rec
		l.append(k, rec)
		if i == 12 {
			if err := l.snapshot(func(fn func(string, []byte)) {
				for k, v := range store {
					fn(k, v)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.close()
	got := map[string][]byte{}
	l2 := openTestLog(t, dir, func(k string, rec []byte) {
		if sdk.RecordVersion(rec) > sdk.RecordVersion(got[k]) {
			got[k] = rec
		}
	})
	l2.close()
	if len(got) != len(store) {
		t.Fatalf("recovered %d keys, want %d", len(got), len(store))
	}
	for k, v := range store {
		if string(got[k]) != string(v) {
			t.Fatalf("key %s differs", k)
		}
	}
	// A damaged snapshot refuses to start.
	snap := filepath.Join(dir, SnapshotName)
	b, _ := os.ReadFile(snap)
	b[snapHdrSize+frameHdrSize] ^= 1
	os.WriteFile(snap, b, 0o644)
	if _, err := openLog(OSDisk{}, registry.RandomID, dir, FsyncAlways, func(string, []byte) {}); wire.AsErrno(err) != 12 {
		t.Fatalf("damaged snapshot: %v", err)
	}
}

// TestRestartBothCenters writes through a pair, closes both centers and
// starts new ones on the same directories: the store is intact, tombstones
// included, and a torn tail on one log is cut.
func TestRestartBothCenters(t *testing.T) {
	p := startPair(t, func(i int, c *Config) { c.SnapshotBytes = 4096 })
	cl := newClient(t, regtest.Endpoint(t, 7, ""), p.Addrs()...)
	ctx := rfctest.Context(t, 10*time.Second)
	want := map[string]string{}
	for i := 0; i < 120; i++ {
		k := fmt.Sprintf("r/%d", i%40)
		v := fmt.Sprintf("value-%d", i)
		if _, err := cl.Put(ctx, k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	for i := 0; i < 40; i += 5 {
		k := fmt.Sprintf("r/%d", i)
		if err := cl.Delete(ctx, k, 0); err != nil {
			t.Fatal(err)
		}
		delete(want, k)
	}
	// The maintenance tick writes the snapshot once the log has grown
	// past SnapshotBytes; on a loaded host that tick can come after the
	// last write returned.
	if !rfctest.WaitFor(10*time.Second, func() bool { return p.Cs[0].Stats().Snapshots != 0 }) {
		t.Fatal("no snapshot written")
	}
	for _, c := range p.Cs {
		c.Close()
	}
	// Tear the tail of center 1's log.
	lp := filepath.Join(p.Dirs[1], LogName)
	f, _ := os.OpenFile(lp, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(appendFrame(nil, "kv/r/torn", kvRecord(1<<40, "torn"))[:20])
	f.Close()

	q := startPairOn(t, p.Dirs)
	if q.Cs[1].Stats().TornBytes != 20 {
		t.Fatalf("torn bytes %d", q.Cs[1].Stats().TornBytes)
	}
	for i, addr := range q.Addrs() {
		one := newClient(t, regtest.Endpoint(t, uint32(20+i), ""), addr)
		for j := 0; j < 40; j++ {
			k := fmt.Sprintf("r/%d", j)
			e, err := one.Get(ctx, k)
			if v, ok := want[k]; ok {
				if err != nil || string(e.Value) != v {
					t.Fatalf("center %d key %s: %q %v, want %q", i, k, e.Value, err, v)
				}
			} else if wire.AsErrno(err) != 10 {
				t.Fatalf("center %d key %s: deleted key back: %v", i, k, err)
			}
		}
		if _, err := one.Get(ctx, "r/torn"); wire.AsErrno(err) != 10 {
			t.Fatalf("torn record applied: %v", err)
		}
	}
}

// startPairOn starts a pair on existing data directories.
func startPairOn(t testing.TB, dirs [2]string) *pair {
	t.Helper()
	p := regtest.StartPair(t, func(i int, ep *rfc.Endpoint, _ string, peer netip.AddrPort) (*Center, error) {
		return StartCenter(ep, testCenterConfig(dirs[i], uint8(i), peer))
	})
	p.Dirs = dirs
	return p
}

// TestLogMidDamageRefused: a frame damaged in the middle of the log, with
// whole frames after it, is not a torn tail: the frames after it were
// acknowledged. Recovery truncated the log at the damaged frame and
// started without them; it must refuse (EPROTO naming the log and the
// frame's offset) and leave the file as it found it.
func TestLogMidDamageRefused(t *testing.T) {
	const nrec, bad = 10, 4
	for _, tc := range []struct {
		name string
		at   func(frame int) int // offset in the frame of the byte damaged
	}{
		{"length", func(int) int { return offFrameLen + sizeFrameLen - 1 }},
		{"length-high", func(int) int { return offFrameLen }},
		{"checksum", func(int) int { return offFrameSum }},
		{"key", func(int) int { return frameHdrSize + sizeKeyLen }},
		{"body-last", func(n int) int { return n - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, nil)
			off, badOff, badLen := logHdrSize, 0, 0
			for i := 0; i < nrec; i++ {
				k, rec := fmt.Sprintf("kv/k%d", i), kvRecord(uint64(2*i+2), "value")
				pos, err := l.append(k, rec)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.syncTo(pos); err != nil {
					t.Fatal(err)
				}
				if i == bad {
					badOff, badLen = off, int(pos.off)-off
				}
				off = int(pos.off)
			}
			l.close()
			path := filepath.Join(dir, LogName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[badOff+tc.at(badLen)] ^= 0x55
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			_, err = openLog(OSDisk{}, registry.RandomID, dir, FsyncAlways, func(k string, rec []byte) { got[k] = true })
			want := fmt.Sprintf("%s: damaged at offset %d", path, badOff)
			if wire.AsErrno(err) != wire.EPROTO || err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("recovered %d records, err %v; want EPROTO %q", len(got), err, want)
			}
			// A center refuses to start on it the same way.
			_, err = StartCenter(regtest.Endpoint(t, 100, ""), testCenterConfig(dir, 0, netip.AddrPort{}))
			if wire.AsErrno(err) != wire.EPROTO || err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("StartCenter: %v; want EPROTO %q", err, want)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(b) {
				t.Fatalf("log changed by a refused start: %d bytes, was %d", len(after), len(b))
			}
		})
	}
}
