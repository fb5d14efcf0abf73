package center

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/wire"
)

// v1Record returns the format 1 encoding of r: the format 2 one without
// the epoch and operation fields.
func v1Record(r *sdk.Record) []byte {
	b := sdk.AppendRecord(nil, r)
	out := append([]byte(nil), b[:sdk.RecHeaderSizeV1]...)
	out[sdk.OffFormat] = sdk.RecFormatV1
	return append(out, b[sdk.RecHeaderSize:]...)
}

// TestUpgradeFormat1Files: a data directory written with format 1
// records (snapshot "FCRSNP01", log "FCRLOG01") is read, its records
// upgraded, and rewritten at once in the current format; a file of an
// unknown format is refused.
func TestUpgradeFormat1Files(t *testing.T) {
	dir := t.TempDir()
	snapRec := &sdk.Record{Kind: sdk.KindKV, Node: 7, Version: 2, ModifiedMs: 1, Body: []byte("snap")}
	logRec := &sdk.Record{Kind: sdk.KindService, Node: 9, Version: 3, ModifiedMs: 2, LeaseMs: 1000,
		Addr: []byte("127.0.0.1:1"), Owner: []byte("127.0.0.1:2"), Body: []byte("meta")}
	snap := []byte(snapMagicV1)
	snap = binary.BigEndian.AppendUint64(snap, 1)
	snap = appendFrame(snap, "kv/a", v1Record(snapRec))
	snap = append(snap, snapEndMagic...)
	snap = binary.BigEndian.AppendUint64(snap, 1)
	lg := appendFrame([]byte(logMagicV1), "svc/x#00000009", v1Record(logRec))
	if err := os.WriteFile(filepath.Join(dir, SnapshotName), snap, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, LogName), lg, 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() *Center {
		c, err := StartCenter(regtest.Endpoint(t, 100, ""), testCenterConfig(dir, 0, netip.AddrPort{}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(c *Center) {
		t.Helper()
		for k, want := range map[string]*sdk.Record{"kv/a": snapRec, "svc/x#00000009": logRec} {
			got, ok := c.Entry(k)
			if !ok || !bytes.Equal(got, sdk.AppendRecord(nil, want)) {
				t.Fatalf("%s: %x", k, got)
			}
		}
	}
	c := start()
	check(c)
	c.Close()
	for name, magic := range map[string]string{SnapshotName: snapMagic, LogName: logMagic} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b[:sizeMagic]) != magic {
			t.Fatalf("%s not rewritten: %q %v", name, b[:min(len(b), sizeMagic)], err)
		}
	}
	c = start()
	check(c)
	c.Close()

	if err := os.WriteFile(filepath.Join(dir, LogName), []byte("FCRLOG99"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := StartCenter(regtest.Endpoint(t, 100, ""), testCenterConfig(dir, 0, netip.AddrPort{})); wire.AsErrno(err) != wire.EPROTO {
		t.Fatalf("a log of an unknown format: %v, want EPROTO", err)
	}
}

// TestEpochGrows: every start of a center has a greater epoch, and the
// records it makes carry it.
func TestEpochGrows(t *testing.T) {
	dir := t.TempDir()
	var last uint64
	for i := 0; i < 3; i++ {
		ep := regtest.Endpoint(t, 100, "")
		c, err := StartCenter(ep, testCenterConfig(dir, 0, netip.AddrPort{}))
		if err != nil {
			t.Fatal(err)
		}
		if c.epoch <= last {
			t.Fatalf("start %d: epoch %d after %d", i, c.epoch, last)
		}
		last = c.epoch
		op := writeOp{key: "kv/e", rec: sdk.Record{Kind: sdk.KindKV, Body: []byte("x")}}
		if _, e := c.write(&op); e != wire.OK {
			t.Fatal(e)
		}
		if rec, _ := c.Entry("kv/e"); sdk.RecordStamp(rec).Epoch != c.epoch {
			t.Fatalf("record epoch %d, center's %d", sdk.RecordStamp(rec).Epoch, c.epoch)
		}
		c.Close()
	}
}
