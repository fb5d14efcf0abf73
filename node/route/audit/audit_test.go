package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// callNSPut is a call number for records of the tests.
const callNSPut = 0x0410

// startLog opens a Log on cfg and starts its writer.
func startLog(tb testing.TB, cfg Config) *Log {
	tb.Helper()
	a, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	a.Start()
	return a
}

// testConfig is the router's default audit configuration in a temp dir.
func testConfig(t testing.TB) Config {
	return Config{Dir: t.TempDir(), RotateBytes: 64 << 20, Keep: 8, Buffer: 16384}
}

func TestAuditLineRoundTrip(t *testing.T) {
	rec := Record{Start: 1_700_000_000_123_456_789, End: 1_700_000_000_124_456_789,
		Client: netip.MustParseAddrPort("127.0.0.1:4000"), Dest: netip.MustParseAddrPort("127.0.0.1:5001"), Prev: netip.MustParseAddrPort("127.0.0.1:5000"),
		CallID: 1<<20 | 3, Node: 9, CallNo: callNSPut, Errno: wire.OK, PrevErr: wire.ENODEAD, Tries: 2,
		Name: "ns-put", Cluster: "c1"}
	rec.NParams = uint16(copy(rec.Params[:], `str:"/c1/a" bytes:00`))
	line := AppendLine(nil, &rec)
	e, err := ParseLine(string(line))
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	if e.Start.UnixNano() != rec.Start || e.End.UnixNano() != rec.End || e.Elapsed != time.Millisecond ||
		e.Client != rec.Client || e.Dest != rec.Dest || e.Prev != "127.0.0.1:5000/ENODEAD" || e.CallID != rec.CallID ||
		e.Node != 9 || e.CallNo != callNSPut || e.Name != "ns-put" || e.Cluster != "c1" || e.Tries != 2 ||
		e.Errno != wire.OK || e.Params != `str:"/c1/a" bytes:00` {
		t.Fatalf("round trip: %+v", e)
	}
	rec.Errno = wire.EUSER + 5
	if e, err := ParseLine(string(AppendLine(nil, &rec))); err != nil || e.Errno != wire.EUSER+5 {
		t.Fatalf("EUSER: %v %v", e.Errno, err)
	}
	for _, bad := range []string{"", "a\tb", strings.Repeat("x\t", auditFields)} {
		if _, err := ParseLine(bad); err != wire.EPROTO {
			t.Fatalf("ParseLine(%q) = %v", bad, err)
		}
	}
}

// Old files past AuditKeep are deleted at rotation; a restarted router
// continues after the highest file.
func TestAuditKeepAndRestart(t *testing.T) {
	for _, fsys := range []FS{OSFS{}, NewMemFS()} {
		t.Run(fmt.Sprintf("%T", fsys), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.RotateBytes = 4 << 10
			cfg.Keep = 3
			cfg.FS = fsys
			var last uint64
			for round := 0; round < 2; round++ {
				a := startLog(t, cfg)
				var rec Record
				rec.Name = "x"
				for i := 0; i < 200; i++ {
					a.Submit(&rec)
					if i%50 == 0 {
						a.Flush(time.Second)
					}
				}
				a.Close()
				if round == 0 {
					seqs, _ := Files(fsys, cfg.Dir)
					last = seqs[len(seqs)-1]
				}
			}
			seqs, _ := Files(fsys, cfg.Dir)
			if len(seqs) != 3 || seqs[2] <= last+1 {
				t.Fatalf("files after two runs: %v", seqs)
			}
		})
	}
}

// The same records written to OSFS and to MemFS leave byte-identical
// files and answer a scan with the same lines and cursors.
func TestMemFSMatchesOS(t *testing.T) {
	var files [2]map[string]string
	var scans [2][]string
	for k, fsys := range []FS{OSFS{}, NewMemFS()} {
		cfg := testConfig(t)
		cfg.RotateBytes = 4 << 10
		cfg.Keep = 100
		cfg.FS = fsys
		a := startLog(t, cfg)
		for i := 0; i < 300; i++ {
			rec := Record{Start: int64(i) * 1e6, End: int64(i)*1e6 + 1000, CallID: uint64(i), CallNo: callNSPut,
				Name: []string{"ns-put", "ns-get"}[i%2], Client: netip.MustParseAddrPort("127.0.0.1:4000")}
			a.Submit(&rec)
			if i%64 == 0 {
				a.Flush(time.Second)
			}
		}
		a.Flush(time.Second)
		q := Filter{Name: []byte("ns-get")}
		var file, off uint64
		for page := 0; page < 100; page++ {
			nf, no, _, err := a.Scan(&q, file, off, 7, 1<<20, func(line []byte) bool {
				scans[k] = append(scans[k], string(line))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			scans[k] = append(scans[k], fmt.Sprintf("cursor %d %d", nf, no))
			if nf == 0 && no == 0 {
				break
			}
			file, off = nf, no
		}
		a.Close()
		files[k] = map[string]string{}
		seqs, err := Files(fsys, cfg.Dir)
		if err != nil || len(seqs) < 3 {
			t.Fatalf("%T: files %v %v", fsys, seqs, err)
		}
		for _, s := range seqs {
			r, err := fsys.Open(filepath.Join(cfg.Dir, FileName(s)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			files[k][FileName(s)] = string(b)
		}
	}
	if !maps.Equal(files[0], files[1]) {
		t.Fatalf("files differ: %d on the OS, %d in memory", len(files[0]), len(files[1]))
	}
	if !slices.Equal(scans[0], scans[1]) || len(scans[0]) < 150 {
		t.Fatalf("scans differ or too short: %d and %d lines", len(scans[0]), len(scans[1]))
	}
}

// A MemFS refuses to create a file twice or in a missing directory, and
// a reader keeps what the file held when it was opened, removed or not.
func TestMemFS(t *testing.T) {
	m := NewMemFS()
	if _, err := m.Create("/a/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create without dir: %v", err)
	}
	if err := m.MkdirAll("/a"); err != nil {
		t.Fatal(err)
	}
	w, err := m.Create("/a/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create("/a/x"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("create twice: %v", err)
	}
	w.Write([]byte("one\n"))
	r, err := m.Open("/a/x")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("two\n"))
	if err := m.Remove("/a/x"); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if string(b) != "one\n" {
		t.Fatalf("reader got %q", b)
	}
	if names, err := m.ReadDir("/a"); err != nil || len(names) != 0 {
		t.Fatalf("dir after remove: %v %v", names, err)
	}
	w.Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// Forwarding never waits for the audit writer: with the writer not
// draining, records past the buffer are dropped and counted.
func TestAuditDropsWhenFull(t *testing.T) {
	cfg := testConfig(t)
	cfg.Buffer = 4
	a, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	for i := 0; i < 10; i++ {
		a.Submit(&rec)
	}
	if s := a.Stats(); s.Dropped != 6 {
		t.Fatalf("dropped %d", s.Dropped)
	}
	a.Start()
	a.Close()
	if s := a.Stats(); s.Written != 4 {
		t.Fatalf("written %d", s.Written)
	}
}

// BenchmarkAuditWriter measures the audit writer alone: records are
// queued with a blocking send (so none is dropped) and the time runs
// until the last one is written to the file.
func BenchmarkAuditWriter(b *testing.B) {
	cfg := testConfig(b)
	a := startLog(b, cfg)
	defer a.Close()
	rec := Record{Start: time.Now().UnixNano(), Client: netip.MustParseAddrPort("127.0.0.1:40000"), Dest: netip.MustParseAddrPort("127.0.0.1:5000"),
		CallID: 1 << 20, Node: 7, CallNo: callNSPut, Name: "ns-put", Cluster: "c1", Tries: 1}
	rec.End = rec.Start + 50_000
	rec.NParams = uint16(copy(rec.Params[:], `str:"/c1/users/alice/profile" bytes:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff..(512)`))
	line := AppendLine(nil, &rec)
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		rec.CallID++
		a.q <- rec
	}
	a.Flush(time.Minute)
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	if s := a.Stats(); s.Written != uint64(b.N) || s.WriteErrors != 0 {
		b.Fatalf("written %d of %d, %d errors", s.Written, b.N, s.WriteErrors)
	}
}

// BenchmarkAuditSubmit is what a forwarding handler pays for its record:
// a non-blocking queue send (dropped and counted if the queue is full).
func BenchmarkAuditSubmit(b *testing.B) {
	cfg := testConfig(b)
	a := startLog(b, cfg)
	defer a.Close()
	var rec Record
	rec.Name = "ns-put"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.Submit(&rec)
	}
	b.StopTimer()
	a.Flush(time.Minute)
	b.ReportMetric(float64(a.Stats().Dropped), "dropped")
}

// TestKeepAfterCreateFailures: a spell of failed file creations
// does not make the next rotation delete the files the keep bound still
// holds. Every failed creation used to consume a sequence number, and the
// keep bound counted sequence numbers, not files: after the spell the
// first new file deleted every file written before it.
func TestKeepAfterCreateFailures(t *testing.T) {
	fsys := &faultFS{MemFS: NewMemFS()}
	a := startLog(t, Config{Dir: "/audit", RotateBytes: 4 << 10, Keep: 4, Buffer: 1024, FS: fsys})
	defer a.Close()
	var rec Record
	rec.Name = "x"
	submit := func(n int) {
		for i := 0; i < n; i++ {
			submitFlush(t, a, &rec)
		}
	}
	// Three files written, the third open.
	for len(mustFiles(t, fsys)) < 3 {
		submit(1)
	}
	before := mustFiles(t, fsys)
	fsys.failCreate.Store(true)
	// Enough records to need a rotation, then more while it keeps failing.
	for i := 0; i < 200 && a.Stats().WriteErrors == 0; i++ {
		submit(1)
	}
	if a.Stats().WriteErrors == 0 {
		t.Fatal("no rotation failed")
	}
	submit(20)
	fsys.failCreate.Store(false)
	submit(1)
	after := mustFiles(t, fsys)
	if len(after) != len(before)+1 {
		t.Fatalf("files %v before the failures, %v after one more file (keep 4)", before, after)
	}
}

// TestRecordAfterShortWrite: a record written after a failed, partial
// write of the file is found by a query. The writer went on appending to
// the file that ended in the part of a line, so the next record's line
// was joined to it and no query could parse either.
func TestRecordAfterShortWrite(t *testing.T) {
	fsys := &faultFS{MemFS: NewMemFS()}
	a := startLog(t, Config{Dir: "/audit", RotateBytes: 64 << 20, Keep: 8, Buffer: 1024, FS: fsys})
	defer a.Close()
	submit := func(id uint64) {
		rec := Record{Name: "ns-put", CallID: id, CallNo: callNSPut, Client: netip.MustParseAddrPort("127.0.0.1:4000")}
		submitFlush(t, a, &rec)
	}
	submit(1)
	fsys.short.Store(true)
	submit(2)
	fsys.short.Store(false)
	submit(3)
	var ids []uint64
	q := Filter{Name: []byte("ns-put")}
	if _, _, _, err := a.Scan(&q, 0, 0, 100, 1<<20, func(line []byte) bool {
		e, err := ParseLine(string(line))
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		ids = append(ids, e.CallID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	t.Logf("records found %v; written %d, dropped %d, write errors %d", ids, st.Written, st.Dropped, st.WriteErrors)
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 3 {
		t.Errorf("records found %v, want [1 3]", ids)
	}
	if st.Written != 2 || st.Dropped != 1 {
		t.Errorf("written %d, dropped %d: want 2 and 1 (the record the failed write lost)", st.Written, st.Dropped)
	}
}

func mustFiles(t *testing.T, fsys FS) []uint64 {
	t.Helper()
	seqs, err := Files(fsys, "/audit")
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// faultFS is a MemFS that fails as a disk does while a flag is set: Create
// fails while failCreate is set (a full disk, a directory made read-only
// for a while), and its files write only half of a buffer, and fail, while
// short is set (a disk that filled up and was freed again).
type faultFS struct {
	*MemFS
	failCreate atomic.Bool
	short      atomic.Bool
}

func (f *faultFS) Create(name string) (File, error) {
	if f.failCreate.Load() {
		return nil, errors.New("disk full")
	}
	w, err := f.MemFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &shortWriter{File: w, fs: f}, nil
}

type shortWriter struct {
	File
	fs *faultFS
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if w.fs.short.Load() {
		n, _ := w.File.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return w.File.Write(p)
}

// submitFlush submits rec to a and waits until it is written (or failed).
func submitFlush(t *testing.T, a *Log, rec *Record) {
	t.Helper()
	a.Submit(rec)
	if !a.Flush(10 * time.Second) {
		t.Fatal("flush timed out")
	}
}

// TestScanBudgetPages: a scan read page by page, each page within a
// budget counted at the file, returns the lines one scan without a bound
// returns, for every budget from ScanMin up: across rotated files, past
// a line too long to be a record (which a page may end inside), and from
// a cursor inside a line, where it resumes at the next line.
func TestScanBudgetPages(t *testing.T) {
	fsys := NewMemFS()
	if err := fsys.MkdirAll("/audit"); err != nil {
		t.Fatal(err)
	}
	rec := func(i int) *Record {
		r := &Record{Start: int64(i) * 1e6, End: int64(i)*1e6 + 1000, CallID: uint64(i), CallNo: callNSPut,
			Name: []string{"ns-put", "ns-get"}[i%3/2], Client: netip.MustParseAddrPort("127.0.0.1:4000")}
		r.NParams = uint16(copy(r.Params[:], strings.Repeat("p", i%ParamsMax)))
		return r
	}
	// A file of another writer: records around a line of 40 KiB.
	var old []byte
	for i := 0; i < 20; i++ {
		old = AppendLine(old, rec(i))
	}
	old = append(old, strings.Repeat("x", 40<<10)+"\n"...)
	for i := 20; i < 40; i++ {
		old = AppendLine(old, rec(i))
	}
	f, err := fsys.Create(filepath.Join("/audit", FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(old)
	f.Close()
	a := startLog(t, Config{Dir: "/audit", RotateBytes: 8 << 10, Keep: 100, Buffer: 1024, FS: fsys})
	defer a.Close()
	for i := 40; i < 400; i++ {
		a.Submit(rec(i))
	}
	if !a.Flush(10 * time.Second) {
		t.Fatal("flush timed out")
	}
	if n := len(mustFiles(t, fsys)); n < 5 {
		t.Fatalf("%d files, want rotations", n)
	}
	q := Filter{Name: []byte("ns-put")}
	scan := func(file, off uint64, budget int64) (lines []string) {
		for page := 0; ; page++ {
			if page > 10000 {
				t.Fatalf("budget %d: no end", budget)
			}
			nf, no, read, err := a.Scan(&q, file, off, 5, budget, func(line []byte) bool {
				lines = append(lines, string(line))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if read > budget {
				t.Fatalf("budget %d: page read %d", budget, read)
			}
			if nf == 0 && no == 0 {
				return lines
			}
			if nf == file && no == off {
				t.Fatalf("budget %d: page at (%d, %d) does not advance", budget, file, off)
			}
			file, off = nf, no
		}
	}
	want := scan(0, 0, 1<<30)
	if len(want) != 267 {
		t.Fatalf("%d lines, want 267", len(want))
	}
	for _, b := range []int64{ScanMin, ScanMin + 1, 3000, 5000, 20000, 50000} {
		if got := scan(0, 0, b); !slices.Equal(got, want) {
			t.Errorf("budget %d: %d lines, want %d", b, len(got), len(want))
		}
	}
	first := len(AppendLine(nil, rec(0)))
	if got := scan(1, uint64(first/2), ScanMin); !slices.Equal(got, want[1:]) {
		t.Errorf("cursor inside the first line: %d lines, want %d", len(got), len(want)-1)
	}
}

// TestAuditRefusesLongLine: a record whose line would pass auditLineMax,
// the longest line the query pages through, is refused by the writer and
// counted (Dropped, Oversize), so the trail never holds one. Before, the
// writer wrote it whole; a page whose budget ran out more than
// auditLineMax bytes into it took it for no record of this log and
// resumed past it.
func TestAuditRefusesLongLine(t *testing.T) {
	fsys := NewMemFS()
	a := startLog(t, Config{Dir: "/audit", RotateBytes: 64 << 20, Keep: 8, Buffer: 16, FS: fsys})
	defer a.Close()
	rec := func(i int, dest string) *Record {
		return &Record{Start: int64(i) * 1e6, End: int64(i)*1e6 + 1000, CallID: uint64(i), CallNo: callNSPut,
			Name: "ns-put", Client: netip.MustParseAddrPort("127.0.0.1:4000"), Dest: netip.MustParseAddrPort(dest)}
	}
	long := "[fe80::1%" + strings.Repeat("z", 1100) + "]:7000"
	a.Submit(rec(1, "127.0.0.1:7000"))
	a.Submit(rec(2, long))
	a.Submit(rec(3, "127.0.0.1:7000"))
	if !a.Flush(10 * time.Second) {
		t.Fatal("flush timed out")
	}
	if s := a.Stats(); s.Written != 2 || s.Dropped != 1 || s.Oversize != 1 {
		t.Errorf("written %d, dropped %d, oversize %d: want 2, 1, 1", s.Written, s.Dropped, s.Oversize)
	}
	for _, seq := range mustFiles(t, fsys) {
		r, err := fsys.Open(filepath.Join("/audit", FileName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if len(l) > auditLineMax {
				t.Errorf("file %d holds a line of %d bytes, past %d", seq, len(l), auditLineMax)
			}
		}
	}
	var ids []uint64
	file, off := uint64(0), uint64(0)
	for page := 0; page < 100; page++ {
		nf, no, _, err := a.Scan(&Filter{Name: []byte("ns-put")}, file, off, 5, ScanMin, func(line []byte) bool {
			if e, err := ParseLine(string(line)); err == nil {
				ids = append(ids, e.CallID)
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if nf == 0 && no == 0 {
			break
		}
		file, off = nf, no
	}
	if !slices.Equal(ids, []uint64{1, 3}) {
		t.Errorf("query found calls %v, want [1 3]", ids)
	}
}
