package memdisk

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

func write(t *testing.T, f interface{ Write([]byte) (int, error) }, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestCrashKeepsOnlySynced: a crash keeps a file's contents up to its
// last sync and the directory entries as of the last sync of their
// directory, and fails the handles of the crashed boot.
func TestCrashKeepsOnlySynced(t *testing.T) {
	d := New()
	v := d.Boot()
	if err := v.PrepareDir("/data"); err != nil {
		t.Fatal(err)
	}
	dir, err := v.OpenDir("/data")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := v.CreateFile("/data/log", 0o600)
	write(t, log, "synced")
	log.Sync()
	dir.Sync()
	write(t, log, "+lost")
	tmp, _ := v.CreateFile("/data/snap.tmp", 0o600)
	write(t, tmp, "snap")
	tmp.Sync()
	if err := v.Rename("/data/snap.tmp", "/data/snap"); err != nil {
		t.Fatal(err)
	}
	// The rename is not durable: no sync of the directory after it.
	d.Crash()
	if _, err := log.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("write after the crash: %v, want ErrClosed", err)
	}
	if _, err := v.ReadFile("/data/log"); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("old boot's read after the crash: %v, want ErrClosed", err)
	}
	v = d.Boot()
	b, err := v.ReadFile("/data/log")
	if err != nil || string(b) != "synced" {
		t.Fatalf("log after the crash: %q %v, want \"synced\"", b, err)
	}
	if _, err := v.ReadFile("/data/snap"); !os.IsNotExist(err) {
		t.Fatalf("snap renamed without a directory sync survived: %v", err)
	}
	if _, err := v.ReadFile("/data/snap.tmp"); !os.IsNotExist(err) {
		t.Fatalf("snap.tmp created without a directory sync survived: %v", err)
	}
}

// TestFileReadSeekTruncate: a file reads back what was written, from
// where Seek put it, and Truncate cuts it.
func TestFileReadSeekTruncate(t *testing.T) {
	v := New().Boot()
	v.PrepareDir("/d")
	f, _ := v.CreateFile("/d/f", 0o600)
	write(t, f, "hello world")
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q %v", b, err)
	}
	if off, _ := f.Seek(0, io.SeekEnd); off != 5 {
		t.Fatalf("end at %d", off)
	}
	write(t, f, "!")
	g, err := v.OpenFile("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(g); string(b) != "hello!" {
		t.Fatalf("reopened: %q", b)
	}
	if _, err := v.OpenFile("/d/none"); !os.IsNotExist(err) {
		t.Fatalf("absent file: %v", err)
	}
}

// TestCenterCrashOnMemDisk: a center on the in-memory disk keeps across a
// crash every write it acknowledged under FsyncAlways, and loses under
// FsyncNever the writes no fsync covered.
func TestCenterCrashOnMemDisk(t *testing.T) {
	for _, tc := range []struct {
		policy center.FsyncPolicy
		kept   bool
	}{{center.FsyncAlways, true}, {center.FsyncNever, false}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			d := New()
			c := memCenter(t, d.Boot(), "", tc.policy)
			ep := c.Endpoint()
			ccfg := client.DefaultClientConfig(ep.Addr())
			ccfg.AttemptTimeout = 200 * time.Millisecond
			cl, err := client.NewClient(regtest.Endpoint(t, 7, ""), ccfg)
			if err != nil {
				t.Fatal(err)
			}
			v, err := cl.Put(rfctest.Context(t, 5*time.Second), "k", []byte("v"), 0)
			if err != nil {
				t.Fatal(err)
			}
			// The process dies: nothing it does from now on reaches the disk.
			ep.Close()
			d.Crash()
			c.Close()

			c = memCenter(t, d.Boot(), ep.Addr().String(), tc.policy)
			defer c.Close()
			rec, ok := c.Entry(sdk.KVPrefix + "k")
			switch {
			case tc.kept && (!ok || sdk.RecordVersion(rec) != v):
				t.Fatalf("acknowledged version %d lost (held: %v)", v, ok)
			case !tc.kept && ok:
				t.Fatalf("an unsynced write survived the crash (version %d)", sdk.RecordVersion(rec))
			}
		})
	}
}

// memCenter starts a center (node 100) with its data in /data/center
// on disk under policy, listening on addr (any loopback port if empty).
func memCenter(t *testing.T, disk center.Disk, addr string, policy center.FsyncPolicy) *center.Center {
	t.Helper()
	cfg := center.DefaultConfig("/data/center")
	cfg.Logger = rfctest.Quiet
	cfg.Fsync = policy
	cfg.Disk = disk
	c, err := center.StartCenter(regtest.Endpoint(t, 100, addr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// syncFailDisk is a center.Disk whose files' Sync fails (EIO) while fail
// is set: a disk that stops writing, or a process that dies before its
// fsyncs return.
type syncFailDisk struct {
	center.Disk
	fail atomic.Bool
}

type syncFailFile struct {
	center.File
	d *syncFailDisk
}

func (f syncFailFile) Sync() error {
	if f.d.fail.Load() {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (d *syncFailDisk) wrap(f center.File, err error) (center.File, error) {
	if err != nil {
		return nil, err
	}
	return syncFailFile{f, d}, nil
}

func (d *syncFailDisk) OpenFile(path string) (center.File, error) {
	return d.wrap(d.Disk.OpenFile(path))
}
func (d *syncFailDisk) OpenDir(dir string) (center.File, error) { return d.wrap(d.Disk.OpenDir(dir)) }
func (d *syncFailDisk) CreateFile(path string, perm os.FileMode) (center.File, error) {
	return d.wrap(d.Disk.CreateFile(path, perm))
}

// TestRecoveredLogMadeDurable: a center that dies after appending a
// write but before its fsync returned finds the write in its log at the
// next start (the process died, the machine did not: the page cache
// still holds it). Recovery took every frame it read for durable, so the
// write's retry was acknowledged at once, found applied, with no fsync
// ever covering it: the machine failing then lost an acknowledged write.
func TestRecoveredLogMadeDurable(t *testing.T) {
	d := New()
	fd := &syncFailDisk{Disk: d.Boot()}
	c := memCenter(t, fd, "", center.FsyncAlways)
	addr := c.Endpoint().Addr()
	op := sdk.OpID{Client: 1, Seq: 1}
	put := func(node uint32) wire.Errno {
		return regtest.Call(t, regtest.Endpoint(t, node, ""), addr, registry.CallPut, func(ps *wire.Params) {
			ps.String(sdk.KVPrefix + "k")
			ps.Bytes([]byte("v"))
			ps.Uint64(0)
			ps.Uint64(0)
			ps.Uint64(registry.PutPlain)
			registry.AppendOp(ps, op)
		})
	}
	fd.fail.Store(true)
	if e := put(7); e == wire.OK {
		t.Fatal("a write whose fsync failed was acknowledged")
	}
	// The process dies; what it wrote stays in the page cache.
	c.Endpoint().Close()
	c.Close()

	c = memCenter(t, d.Boot(), addr.String(), center.FsyncAlways)
	if e := put(8); e != wire.OK {
		t.Fatalf("retry of the write after the restart: %v", e)
	}
	// The machine fails.
	c.Endpoint().Close()
	d.Crash()
	c.Close()

	c = memCenter(t, d.Boot(), addr.String(), center.FsyncAlways)
	defer c.Close()
	if _, ok := c.Entry(sdk.KVPrefix + "k"); !ok {
		t.Fatal("acknowledged write lost in the machine's failure")
	}
}
