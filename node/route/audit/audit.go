package audit

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"fastcall/wire"
)

// The audit file format (docs/ROUTE.md, "Audit trail"): UTF-8 text, one
// record per line, auditFields fields separated by one tab, in this order.
// No field contains a tab or a newline.
const (
	fTime      = iota // start, RFC 3339 UTC with microseconds
	fStartNs          // start, Unix ns
	fEndNs            // end, Unix ns
	fElapsedUs        // end - start, µs
	fClient           // client address ip:port
	fNode             // client node id, decimal
	fCallID           // client call id, decimal
	fCallNo           // call number, 0x%04x
	fName             // call name
	fCluster          // sub-cluster, "-" if none resolved
	fDest             // member the last attempt went to, "-" if none
	fOutcome          // error number name, "OK" on success
	fTries            // attempts made (members tried), decimal
	fPrev             // "addr/ERRNO" of the attempt before the last, "-" if none
	fParams           // rendered parameters (renderParams)
	auditFields
)

// ParamsMax bounds the rendered parameters of one record; the router's
// renderer ends a longer rendering with " ...".
const ParamsMax = 320

// File naming: audit-NNNNNNNN.log, NNNNNNNN the file's sequence number in
// decimal (8 digits, more past 99999999), one more than the previous file.
const (
	auditFilePrefix = "audit-"
	auditFileSuffix = ".log"
	FileMode        = 0o600
	auditDirMode    = 0o700
	// auditWriteChunk is the buffered size past which the writer writes.
	auditWriteChunk = 64 << 10
	// auditLineMax bounds one formatted line, newline included: the
	// longest line the query pages through (ScanMin). The writer refuses
	// a longer one (Log.put); the fields' own bounds (NameMax, ParamsMax,
	// route.MaxZoneLen for the addresses) keep a record's line below it.
	auditLineMax = 1024
)

// Record is one routed call, as the router hands it to the writer. It
// is copied by value through the queue; the names point at strings that
// never change (call names, sub-cluster names).
type Record struct {
	Start, End int64 // Unix ns
	Client     netip.AddrPort
	Dest       netip.AddrPort // member the last attempt went to
	Prev       netip.AddrPort // member of the attempt before the last
	CallID     uint64
	Node       uint32
	CallNo     uint16
	Errno      wire.Errno
	PrevErr    wire.Errno
	Tries      uint8
	Name       string
	Cluster    string
	NParams    uint16 // bytes of Params used
	Params     [ParamsMax]byte
}

// AppendLine formats rec as one audit line, newline included.
func AppendLine(b []byte, rec *Record) []byte {
	b = time.Unix(0, rec.Start).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, '\t')
	b = strconv.AppendInt(b, rec.Start, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, rec.End, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, (rec.End-rec.Start)/1000, 10)
	b = append(b, '\t')
	b = appendAddr(b, rec.Client)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(rec.Node), 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, rec.CallID, 10)
	b = append(b, '\t', '0', 'x')
	const hexDigits = "0123456789abcdef"
	b = append(b, hexDigits[rec.CallNo>>12], hexDigits[rec.CallNo>>8&15], hexDigits[rec.CallNo>>4&15], hexDigits[rec.CallNo&15])
	b = append(b, '\t')
	b = appendName(b, rec.Name)
	b = append(b, '\t')
	b = appendName(b, rec.Cluster)
	b = append(b, '\t')
	b = appendAddr(b, rec.Dest)
	b = append(b, '\t')
	b = append(b, rec.Errno.String()...)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(rec.Tries), 10)
	b = append(b, '\t')
	if rec.Prev.IsValid() {
		b = rec.Prev.AppendTo(b)
		b = append(b, '/')
		b = append(b, rec.PrevErr.String()...)
	} else {
		b = append(b, '-')
	}
	b = append(b, '\t')
	b = append(b, rec.Params[:rec.NParams]...)
	return append(b, '\n')
}

func appendAddr(b []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return append(b, '-')
	}
	return a.AppendTo(b)
}

// NameMax bounds the call and sub-cluster names a line holds.
const NameMax = 64

// appendName appends a name, "-" if empty, with any byte below 0x21 (tab,
// newline, space) replaced by '_' so the line keeps its shape, cut to
// NameMax bytes. A name ValidName accepts is appended unchanged.
func appendName(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s) && i < NameMax; i++ {
		c := s[i]
		if nameByteBad(c) {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

func nameByteBad(c byte) bool { return c < 0x21 || c == 0x7f }

// ValidName reports whether a line holds name as it is, so that a query
// by the name finds its records: 1 to NameMax bytes of UTF-8, not "-",
// with no blank, control byte or DEL.
func ValidName(name string) bool {
	if name == "" || name == "-" || len(name) > NameMax || !utf8.ValidString(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if nameByteBad(name[i]) {
			return false
		}
	}
	return true
}

// Stats are the audit writer's counters.
type Stats struct {
	Written     uint64 // records written to a file
	Dropped     uint64 // records dropped: queue full, no file open, a failed write, or Oversize
	Oversize    uint64 // records dropped because their line passed the query's line bound
	WriteErrors uint64 // failed writes, opens and rotations
	Rotations   uint64
	File        string // current file name, "" if none
}

// Log owns the audit files. Submit is called by handlers on any
// worker; every other method but Stats, Flush and Dir runs on the writer
// goroutine, which alone touches the fields under "writer".
type Log struct {
	fs       FS
	dir      string
	rotate   int64
	keep     int
	q        chan Record        // bounded by Config.Buffer
	flushReq chan chan struct{} // flush requests (queries, Flush)
	done     chan struct{}      // closed by close
	wg       sync.WaitGroup
	closing  sync.Once
	file     atomic.Pointer[string] // current file name

	written, dropped, oversize, writeErrs, rotations atomic.Uint64

	// writer
	f       File
	seq     uint64
	size    int64
	buf     []byte
	bufRecs int // records formatted in buf
	line    []byte
}

// Config is where and how a Log writes. The router checks the values
// (route.Config); Open takes them as given.
type Config struct {
	Dir         string // created with mode 0700 if missing
	RotateBytes int64  // size past which the current file is closed and a new one started
	Keep        int    // files kept, the current one included
	Buffer      int    // records waiting for the writer
	FS          FS     // the files; nil: OSFS
}

// Open creates the directory if needed and opens a new file numbered
// after the highest one present. It starts no goroutine (Start does).
func Open(cfg Config) (*Log, error) {
	fsys := cfg.FS
	if fsys == nil {
		fsys = OSFS{}
	}
	if err := fsys.MkdirAll(cfg.Dir); err != nil {
		return nil, err
	}
	a := &Log{fs: fsys, dir: cfg.Dir, rotate: cfg.RotateBytes, keep: cfg.Keep,
		q: make(chan Record, cfg.Buffer), flushReq: make(chan chan struct{}), done: make(chan struct{}),
		buf: make([]byte, 0, auditWriteChunk+auditLineMax), line: make([]byte, 0, auditLineMax+ParamsMax)}
	seqs, err := Files(fsys, a.dir)
	if err != nil {
		return nil, err
	}
	if n := len(seqs); n > 0 {
		a.seq = seqs[n-1]
	}
	if err := a.next(); err != nil {
		return nil, err
	}
	return a, nil
}

// FileName returns the name of file seq.
func FileName(seq uint64) string {
	s := strconv.FormatUint(seq, 10)
	if len(s) < 8 {
		s = strings.Repeat("0", 8-len(s)) + s
	}
	return auditFilePrefix + s + auditFileSuffix
}

// Files returns the sequence numbers of the audit files in dir,
// ascending.
func Files(fsys FS, dir string) ([]uint64, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, n := range names {
		if !strings.HasPrefix(n, auditFilePrefix) || !strings.HasSuffix(n, auditFileSuffix) {
			continue
		}
		v, err := strconv.ParseUint(n[len(auditFilePrefix):len(n)-len(auditFileSuffix)], 10, 64)
		if err != nil || v == 0 {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// next closes the current file, opens file seq+1 (mode 0600, never an
// existing file) and deletes the oldest files past the keep bound.
func (a *Log) next() error {
	if a.f != nil {
		_ = a.f.Sync()
		_ = a.f.Close()
		a.f = nil
	}
	a.seq++
	name := filepath.Join(a.dir, FileName(a.seq))
	f, err := a.fs.Create(name)
	if err != nil {
		a.file.Store(nil)
		return err
	}
	a.f, a.size = f, 0
	a.file.Store(&name)
	// The keep bound counts files, not sequence numbers: a creation that
	// failed consumed a number without leaving a file.
	if seqs, err := Files(a.fs, a.dir); err == nil && len(seqs) > a.keep {
		for _, s := range seqs[:len(seqs)-a.keep] {
			_ = a.fs.Remove(filepath.Join(a.dir, FileName(s)))
		}
	}
	return nil
}

// Dir returns the directory of the files.
func (a *Log) Dir() string { return a.dir }

// Start starts the writer goroutine.
func (a *Log) Start() {
	a.wg.Add(1)
	go a.writeLoop()
}

// Submit queues a record without waiting: a full queue drops it.
func (a *Log) Submit(rec *Record) {
	select {
	case a.q <- *rec:
	default:
		a.dropped.Add(1)
	}
}

// Flush waits until every record queued before the call is written, or
// until timeout; it reports whether it completed.
func (a *Log) Flush(timeout time.Duration) bool {
	ack := make(chan struct{})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a.flushReq <- ack:
	case <-a.done:
		return false
	case <-t.C:
		return false
	}
	select {
	case <-ack:
		return true
	case <-t.C:
		return false
	}
}

// Close stops the writer after it has written every queued record, and
// closes the file.
func (a *Log) Close() {
	a.closing.Do(func() { close(a.done) })
	a.wg.Wait()
}

// Stats returns the writer's counters.
func (a *Log) Stats() Stats {
	s := Stats{Written: a.written.Load(), Dropped: a.dropped.Load(), Oversize: a.oversize.Load(), WriteErrors: a.writeErrs.Load(),
		Rotations: a.rotations.Load()}
	if p := a.file.Load(); p != nil {
		s.File = *p
	}
	return s
}

// auditPace is how long the writer sleeps after writing before it takes
// more records. Records that arrive meanwhile wait in the queue without
// waking it, so under load the writer wakes once per auditPace instead
// of once per record (each wake-up costs the forwarding reader and the
// CPU a goroutine switch). A record reaches the file at most about
// auditPace after it is queued; Flush and audit queries write at once.
const auditPace = time.Millisecond

// writeLoop is the writer goroutine: it formats queued records into a
// buffer and writes it when it passes auditWriteChunk or the queue runs
// empty, then rests for auditPace. While idle it waits on the queue, so
// the first record after a quiet spell is written at once.
func (a *Log) writeLoop() {
	defer a.wg.Done()
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	for {
		select {
		case rec := <-a.q:
			a.put(&rec)
			a.drain()
		case ack := <-a.flushReq:
			a.drain()
			close(ack)
			continue
		case <-a.done:
			a.finish()
			return
		}
		pace.Reset(auditPace)
	rest:
		for {
			select {
			case <-pace.C:
				break rest
			case ack := <-a.flushReq:
				a.drain()
				close(ack)
			case <-a.done:
				pace.Stop()
				a.finish()
				return
			}
		}
	}
}

// finish writes every queued record, then syncs and closes the file.
func (a *Log) finish() {
	a.drain()
	if a.f != nil {
		_ = a.f.Sync()
		_ = a.f.Close()
		a.f = nil
	}
	a.file.Store(nil)
}

// drain formats every record queued now and writes the buffer.
func (a *Log) drain() {
	for {
		select {
		case rec := <-a.q:
			a.put(&rec)
			continue
		default:
		}
		break
	}
	a.writeOut()
}

// put formats one record into the buffer, rotating first if the line
// would take the current file past the rotation size. A line longer than
// auditLineMax is refused, counted: the query takes a page that runs out
// that far into a line for a line of no record and resumes past it, so
// written it would be skipped, or end a page inside it.
func (a *Log) put(rec *Record) {
	a.line = AppendLine(a.line[:0], rec)
	if len(a.line) > auditLineMax {
		a.oversize.Add(1)
		a.dropped.Add(1)
		return
	}
	if a.size+int64(len(a.buf))+int64(len(a.line)) > a.rotate && a.size+int64(len(a.buf)) > 0 {
		a.writeOut()
		if a.size > 0 { // writeOut did not start a new file
			a.rotations.Add(1)
			if err := a.next(); err != nil {
				a.writeErrs.Add(1)
			}
		}
	}
	if a.f == nil {
		// The last rotation failed: try again, else drop.
		if err := a.next(); err != nil {
			a.dropped.Add(1)
			return
		}
	}
	a.buf = append(a.buf, a.line...)
	a.bufRecs++
	if len(a.buf) >= auditWriteChunk {
		a.writeOut()
	}
}

// writeOut writes the buffer to the current file. The records of a
// failed write that did not reach the file whole are counted dropped;
// if it left part of a line at the end of the file, later records go to
// a new file, where no query would join them to that part (Scan skips
// the damaged tail of a file that is not the newest).
func (a *Log) writeOut() {
	if len(a.buf) == 0 {
		return
	}
	whole := 0
	if a.f != nil {
		n, err := a.f.Write(a.buf)
		a.size += int64(n)
		whole = a.bufRecs
		if err != nil {
			a.writeErrs.Add(1)
			whole = bytes.Count(a.buf[:n], []byte{'\n'})
			if n > 0 && a.buf[n-1] != '\n' {
				if err := a.next(); err != nil {
					a.writeErrs.Add(1)
				}
			}
		}
	}
	a.written.Add(uint64(whole))
	a.dropped.Add(uint64(a.bufRecs - whole))
	a.buf = a.buf[:0]
	a.bufRecs = 0
}
