package center

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/wire"
)

// Known-answer vectors of the registry's on-disk and pushed formats
// (docs/REGISTRY.md, "Vectors"): the entry record of each kind, its log
// frame, and a log file and a snapshot file holding the first. They are
// written from today's format and fixed here; a change to any of these
// layouts fails them.

// vectorRecords are the records of the vectors, one of each kind, with
// their encodings and their log frames (hex).
var vectorRecords = []struct {
	name       string
	key        string
	rec        sdk.Record
	enc, frame string
}{
	{"kv", "kv/a",
		sdk.Record{Kind: sdk.KindKV, Node: 7, Version: 0x102, ExpireMs: 0x1122334455, ModifiedMs: 0x66778899aa,
			Epoch: 0xe0, Op: sdk.OpID{Client: 0xc11e, Seq: 0x5e9}, Body: []byte("v1")},
		"02020000" + "00000007" + "0000000000000102" + "0000001122334455" + "00000066778899aa" +
			"00000000000000e0" + "000000000000c11e" + "00000000000005e9" + "7631",
		"00000040" + "aa7a160cc439e37a" + "0004" + "6b762f61"},
	{"service", "svc/db/0000000000000007",
		sdk.Record{Kind: sdk.KindService, Node: 7, Version: 0x201, ModifiedMs: 0x66778899aa, LeaseMs: 3000,
			Epoch: 0xe0, Op: sdk.OpID{Client: 0xc11e, Seq: 0x5e9}, Addr: []byte("127.0.0.1:7000"), Owner: []byte("127.0.0.1:7001"), Body: []byte("m")},
		"02010000" + "00000007" + "0000000000000201" + "0000000000000000" + "00000066778899aa" +
			"00000000000000e0" + "000000000000c11e" + "00000000000005e9" +
			"00000bb8" + "000e" + "3132372e302e302e313a37303030" + "000e" + "3132372e302e302e313a37303031" + "6d",
		"00000076" + "d4eaf80ec60bfcc8" + "0017" + "7376632f64622f30303030303030303030303030303037"},
	{"tombstone", "kv/b",
		sdk.Record{Kind: sdk.KindTombstone, Node: 7, Version: 0x303, ModifiedMs: 0x66778899aa,
			Epoch: 0xe0, Op: sdk.OpID{Client: 0xc11e, Seq: 0x5e9}},
		"02000000" + "00000007" + "0000000000000303" + "0000000000000000" + "00000066778899aa" +
			"00000000000000e0" + "000000000000c11e" + "00000000000005e9",
		"0000003e" + "c582037429a1169e" + "0004" + "6b762f62"},
}

// TestRecordVectors: each record encodes to its vector and its vector
// parses back to it; each log frame (length, xxhash64 of length and body,
// key length, key, record) is its vector and decodes to key and record.
func TestRecordVectors(t *testing.T) {
	for _, v := range vectorRecords {
		t.Run(v.name, func(t *testing.T) {
			b := sdk.AppendRecord(nil, &v.rec)
			if h := hex.EncodeToString(b); h != v.enc {
				t.Fatalf("record:\n got %s\nwant %s", h, v.enc)
			}
			var got sdk.Record
			if e := sdk.ParseRecord(b, &got); e != wire.OK || got.Kind != v.rec.Kind || got.Node != v.rec.Node ||
				got.Version != v.rec.Version || got.ExpireMs != v.rec.ExpireMs || got.ModifiedMs != v.rec.ModifiedMs ||
				got.LeaseMs != v.rec.LeaseMs || got.Epoch != v.rec.Epoch || got.Op != v.rec.Op || !bytes.Equal(got.Addr, v.rec.Addr) ||
				!bytes.Equal(got.Owner, v.rec.Owner) || !bytes.Equal(got.Body, v.rec.Body) {
				t.Fatalf("parse: %v %+v", e, got)
			}
			f := appendFrame(nil, v.key, b)
			if h := hex.EncodeToString(f); h != v.frame+v.enc {
				t.Fatalf("frame:\n got %s\nwant %s", h, v.frame+v.enc)
			}
			k, rec, next := nextFrame(f, 0)
			if string(k) != v.key || !bytes.Equal(rec, b) || next != len(f) {
				t.Fatalf("nextFrame: %q %x %d", k, rec, next)
			}
		})
	}
}

// TestLogAndSnapshotVectors: a log holding the kv vector's frame is the
// log magic then the frame; a snapshot holding it is the snapshot magic,
// the frame count, the frame, the end magic and the count again. Both
// files, written from the vectors, recover the record.
func TestLogAndSnapshotVectors(t *testing.T) {
	v := vectorRecords[0]
	rec := sdk.AppendRecord(nil, &v.rec)
	frame := v.frame + v.enc
	wantLog := "4643524c4f473032" + frame                                                                 // "FCRLOG02"
	wantSnap := "464352534e503032" + "0000000000000001" + frame + "464352534e504f4b" + "0000000000000001" // "FCRSNP02" ... "FCRSNPOK"

	dir := t.TempDir()
	l, err := openLog(OSDisk{}, registry.RandomID, dir, FsyncNever, func(string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if _, err := l.append(v.key, rec); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	if h := read(LogName); h != wantLog {
		t.Fatalf("log:\n got %s\nwant %s", h, wantLog)
	}
	if err := l.snapshot(func(fn func(string, []byte)) { fn(v.key, rec) }); err != nil {
		t.Fatal(err)
	}
	if h := read(SnapshotName); h != wantSnap {
		t.Fatalf("snapshot:\n got %s\nwant %s", h, wantSnap)
	}

	// Recovery from files written from the vectors alone.
	for _, files := range []map[string]string{{LogName: wantLog}, {SnapshotName: wantSnap, LogName: "4643524c4f473032"}} {
		d := t.TempDir()
		for name, h := range files {
			b, _ := hex.DecodeString(h)
			if err := os.WriteFile(filepath.Join(d, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var keys []string
		l, err := openLog(OSDisk{}, registry.RandomID, d, FsyncNever, func(key string, r []byte) {
			if !bytes.Equal(r, rec) {
				t.Errorf("recovered %q = %x, want %x", key, r, rec)
			}
			keys = append(keys, key)
		})
		if err != nil {
			t.Fatalf("recover %v: %v", files, err)
		}
		l.close()
		if len(keys) != 1 || keys[0] != v.key {
			t.Fatalf("recovered %q from %v", keys, files)
		}
	}
}
