package route

import (
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// File naming: audit-NNNNNNNN.log, NNNNNNNN the file's sequence number in
// decimal (8 digits, more past 99999999), one more than the previous file.
const (
	auditFilePrefix = "audit-"
	auditFileSuffix = ".log"
	auditFileMode   = 0o600
	auditDirMode    = 0o700
	// auditWriteChunk is the buffered size past which the writer writes.
	auditWriteChunk = 64 << 10
	// auditLineMax bounds one formatted line.
	auditLineMax = 1024
)

// auditRecord is one routed call, as the handler hands it to the writer.
// It is copied by value through the queue; the names point at strings
// that never change (call names, sub-cluster names).
type auditRecord struct {
	start, end int64 // Unix ns
	client     netip.AddrPort
	dest       netip.AddrPort
	prev       netip.AddrPort
	callID     uint64
	node       uint32
	callNo     uint16
	errno      wire.Errno
	prevErr    wire.Errno
	tries      uint8
	name       string
	cluster    string
	nparams    uint16
	params     [auditParamsMax]byte
}

// appendLine formats rec as one audit line, newline included.
func appendLine(b []byte, rec *auditRecord) []byte {
	b = time.Unix(0, rec.start).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, '\t')
	b = strconv.AppendInt(b, rec.start, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, rec.end, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, (rec.end-rec.start)/1000, 10)
	b = append(b, '\t')
	b = appendAddr(b, rec.client)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(rec.node), 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, rec.callID, 10)
	b = append(b, '\t', '0', 'x')
	const hexDigits = "0123456789abcdef"
	b = append(b, hexDigits[rec.callNo>>12], hexDigits[rec.callNo>>8&15], hexDigits[rec.callNo>>4&15], hexDigits[rec.callNo&15])
	b = append(b, '\t')
	b = appendName(b, rec.name)
	b = append(b, '\t')
	b = appendName(b, rec.cluster)
	b = append(b, '\t')
	b = appendAddr(b, rec.dest)
	b = append(b, '\t')
	b = append(b, rec.errno.String()...)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(rec.tries), 10)
	b = append(b, '\t')
	if rec.prev.IsValid() {
		b = rec.prev.AppendTo(b)
		b = append(b, '/')
		b = append(b, rec.prevErr.String()...)
	} else {
		b = append(b, '-')
	}
	b = append(b, '\t')
	b = append(b, rec.params[:rec.nparams]...)
	return append(b, '\n')
}

func appendAddr(b []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return append(b, '-')
	}
	return a.AppendTo(b)
}

// appendName appends a name, "-" if empty, with any byte below 0x21 (tab,
// newline, space) replaced by '_' so the line keeps its shape.
func appendName(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s) && i < 64; i++ {
		c := s[i]
		if c < 0x21 || c == 0x7f {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// AuditStats are the audit writer's counters.
type AuditStats struct {
	Written     uint64 // records written to a file
	Dropped     uint64 // records dropped: queue full, or no file open
	WriteErrors uint64 // failed writes, opens and rotations
	Rotations   uint64
	File        string // current file name, "" if none
}

// auditLog owns the audit files. submit is called by handlers on any
// worker; every other method but stats and flush runs on the writer
// goroutine, which alone touches the fields under "writer".
type auditLog struct {
	dir      string
	rotate   int64
	keep     int
	q        chan auditRecord   // bounded by Config.AuditBuffer
	flushReq chan chan struct{} // flush requests (queries, Flush)
	done     chan struct{}      // closed by close
	wg       sync.WaitGroup
	closing  sync.Once
	file     atomic.Pointer[string] // current file name

	written, dropped, writeErrs, rotations atomic.Uint64

	// writer
	f    *os.File
	seq  uint64
	size int64
	buf  []byte
	line []byte
}

// openAuditLog creates dir if needed and opens a new file numbered after
// the highest one present. It starts no goroutine (start does).
func openAuditLog(cfg *Config) (*auditLog, error) {
	if err := os.MkdirAll(cfg.AuditDir, auditDirMode); err != nil {
		return nil, err
	}
	a := &auditLog{dir: cfg.AuditDir, rotate: cfg.AuditRotateBytes, keep: cfg.AuditKeep,
		q: make(chan auditRecord, cfg.AuditBuffer), flushReq: make(chan chan struct{}), done: make(chan struct{}),
		buf: make([]byte, 0, auditWriteChunk+auditLineMax), line: make([]byte, 0, auditLineMax+auditParamsMax)}
	seqs, err := auditFiles(a.dir)
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

// auditFileName returns the name of file seq.
func auditFileName(seq uint64) string {
	s := strconv.FormatUint(seq, 10)
	if len(s) < 8 {
		s = strings.Repeat("0", 8-len(s)) + s
	}
	return auditFilePrefix + s + auditFileSuffix
}

// auditFiles returns the sequence numbers of the audit files in dir,
// ascending.
func auditFiles(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		n := e.Name()
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
// existing file) and deletes files older than the keep bound.
func (a *auditLog) next() error {
	if a.f != nil {
		_ = a.f.Sync()
		_ = a.f.Close()
		a.f = nil
	}
	a.seq++
	name := filepath.Join(a.dir, auditFileName(a.seq))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, auditFileMode)
	if err != nil {
		a.file.Store(nil)
		return err
	}
	a.f, a.size = f, 0
	a.file.Store(&name)
	if a.seq > uint64(a.keep) {
		if seqs, err := auditFiles(a.dir); err == nil {
			for _, s := range seqs {
				if s+uint64(a.keep) <= a.seq {
					_ = os.Remove(filepath.Join(a.dir, auditFileName(s)))
				}
			}
		}
	}
	return nil
}

// start starts the writer goroutine.
func (a *auditLog) start() {
	a.wg.Add(1)
	go a.writeLoop()
}

// submit queues a record without waiting: a full queue drops it.
func (a *auditLog) submit(rec *auditRecord) {
	select {
	case a.q <- *rec:
	default:
		a.dropped.Add(1)
	}
}

// flush waits until every record queued before the call is written, or
// until timeout; it reports whether it completed.
func (a *auditLog) flush(timeout time.Duration) bool {
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

// close stops the writer after it has written every queued record, and
// closes the file.
func (a *auditLog) close() {
	a.closing.Do(func() { close(a.done) })
	a.wg.Wait()
}

func (a *auditLog) stats() AuditStats {
	s := AuditStats{Written: a.written.Load(), Dropped: a.dropped.Load(), WriteErrors: a.writeErrs.Load(),
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
func (a *auditLog) writeLoop() {
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
func (a *auditLog) finish() {
	a.drain()
	if a.f != nil {
		_ = a.f.Sync()
		_ = a.f.Close()
		a.f = nil
	}
	a.file.Store(nil)
}

// drain formats every record queued now and writes the buffer.
func (a *auditLog) drain() {
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
// would take the current file past the rotation size.
func (a *auditLog) put(rec *auditRecord) {
	a.line = appendLine(a.line[:0], rec)
	if a.size+int64(len(a.buf))+int64(len(a.line)) > a.rotate && a.size+int64(len(a.buf)) > 0 {
		a.writeOut()
		a.rotations.Add(1)
		if err := a.next(); err != nil {
			a.writeErrs.Add(1)
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
	a.written.Add(1)
	if len(a.buf) >= auditWriteChunk {
		a.writeOut()
	}
}

// writeOut writes the buffer to the current file.
func (a *auditLog) writeOut() {
	if len(a.buf) == 0 {
		return
	}
	if a.f != nil {
		n, err := a.f.Write(a.buf)
		a.size += int64(n)
		if err != nil {
			a.writeErrs.Add(1)
		}
	}
	a.buf = a.buf[:0]
}
