package route

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"fastcall/rfc"
	"fastcall/wire"
)

// AuditEntry is one parsed audit record.
type AuditEntry struct {
	Start, End time.Time
	Elapsed    time.Duration // as recorded, µs resolution
	Client     netip.AddrPort
	Node       uint32
	CallID     uint64
	CallNo     uint16
	Name       string
	Cluster    string // "" if none resolved
	Dest       netip.AddrPort
	Errno      wire.Errno
	Tries      int
	Prev       string // "addr/ERRNO" of the attempt before the last, "" if none
	Params     string
	Line       string // the line as stored, without its newline
}

// splitAudit splits a line (without newline) into its fields; false if
// it does not have exactly auditFields fields.
func splitAudit(line []byte, out *[auditFields][]byte) bool {
	i := 0
	for i < auditFields-1 {
		j := bytes.IndexByte(line, '\t')
		if j < 0 {
			return false
		}
		out[i] = line[:j]
		line = line[j+1:]
		i++
	}
	if bytes.IndexByte(line, '\t') >= 0 {
		return false
	}
	out[i] = line
	return true
}

// ParseAuditLine parses one audit line (with or without its newline).
// EPROTO if it is malformed.
func ParseAuditLine(line string) (AuditEntry, error) {
	line = trimNL(line)
	var f [auditFields][]byte
	if !splitAudit([]byte(line), &f) {
		return AuditEntry{}, wire.EPROTO
	}
	var e AuditEntry
	e.Line = line
	start, err1 := strconv.ParseInt(string(f[fStartNs]), 10, 64)
	end, err2 := strconv.ParseInt(string(f[fEndNs]), 10, 64)
	el, err3 := strconv.ParseInt(string(f[fElapsedUs]), 10, 64)
	node, err4 := strconv.ParseUint(string(f[fNode]), 10, 32)
	id, err5 := strconv.ParseUint(string(f[fCallID]), 10, 64)
	no, err6 := strconv.ParseUint(string(f[fCallNo]), 0, 16)
	tries, err7 := strconv.Atoi(string(f[fTries]))
	client, err8 := netip.ParseAddrPort(string(f[fClient]))
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
		if err != nil {
			return AuditEntry{}, wire.EPROTO
		}
	}
	errno, ok := wire.ErrnoByName(string(f[fOutcome]))
	if !ok {
		v, err := parseErrnoText(string(f[fOutcome]))
		if err != nil {
			return AuditEntry{}, wire.EPROTO
		}
		errno = v
	}
	e.Start, e.End, e.Elapsed = time.Unix(0, start), time.Unix(0, end), time.Duration(el)*time.Microsecond
	e.Client, e.Node, e.CallID, e.CallNo, e.Tries = client, uint32(node), id, uint16(no), tries
	e.Name, e.Errno, e.Params = string(f[fName]), errno, string(f[fParams])
	if c := string(f[fCluster]); c != "-" {
		e.Cluster = c
	}
	if d := string(f[fDest]); d != "-" {
		e.Dest, _ = netip.ParseAddrPort(d)
	}
	if p := string(f[fPrev]); p != "-" {
		e.Prev = p
	}
	return e, nil
}

// parseErrnoText parses "EUSER+n" and "E?n".
func parseErrnoText(s string) (wire.Errno, error) {
	var base uint64
	switch {
	case len(s) > 6 && s[:6] == "EUSER+":
		base, s = uint64(wire.EUSER), s[6:]
	case len(s) > 2 && s[:2] == "E?":
		s = s[2:]
	default:
		return 0, wire.EPROTO
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || base+v > 0xFFFF {
		return 0, wire.EPROTO
	}
	return wire.Errno(base + v), nil
}

func trimNL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}

// auditFilter selects records: exact call name, start in [since, until)
// (0: unbounded), and the client's address (any port if port is 0).
type auditFilter struct {
	name         []byte
	since, until int64
	client       netip.Addr // invalid: any
	port         uint16
}

// parseClientFilter parses "", "ip" or "ip:port".
func parseClientFilter(s string) (netip.Addr, uint16, bool) {
	if s == "" {
		return netip.Addr{}, 0, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), ap.Port(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return a, 0, true
}

// match reports whether the split line is selected.
func (q *auditFilter) match(f *[auditFields][]byte) bool {
	if !bytes.Equal(f[fName], q.name) {
		return false
	}
	if q.since != 0 || q.until != 0 {
		start, err := strconv.ParseInt(string(f[fStartNs]), 10, 64)
		if err != nil || (q.since != 0 && start < q.since) || (q.until != 0 && start >= q.until) {
			return false
		}
	}
	if q.client.IsValid() {
		ap, err := netip.ParseAddrPort(string(f[fClient]))
		if err != nil || ap.Addr() != q.client || (q.port != 0 && ap.Port() != q.port) {
			return false
		}
	}
	return true
}

// scanAudit reads the audit files of dir from the cursor (file, off) on,
// (0, 0) meaning the oldest file, and calls emit for every selected line
// (without newline) until emit returns false, limit lines were emitted,
// or scanBudget bytes were read. It returns the cursor of the first line
// not yet examined, (0, 0) when every file was read to its end. A line
// without its newline at the end of the newest file is still being
// written and ends the scan; elsewhere it is a damaged tail and skipped.
func scanAudit(dir string, q *auditFilter, file, off uint64, limit int, scanBudget int64,
	emit func(line []byte) bool) (nextFile, nextOff uint64, err error) {
	seqs, err := auditFiles(dir)
	if err != nil {
		return 0, 0, err
	}
	var f [auditFields][]byte
	emitted := 0
	var scanned int64
	for i, seq := range seqs {
		if seq < file {
			continue
		}
		pos := int64(0)
		if seq == file {
			pos = int64(off)
		}
		fh, err := os.Open(filepath.Join(dir, auditFileName(seq)))
		if err != nil {
			continue // deleted by a rotation since the listing
		}
		if _, err := fh.Seek(pos, io.SeekStart); err != nil {
			fh.Close()
			return 0, 0, err
		}
		br := bufio.NewReaderSize(fh, 64<<10)
		last := i == len(seqs)-1
		for {
			line, rerr := br.ReadSlice('\n')
			if rerr == bufio.ErrBufferFull {
				// Not a line this router wrote: skip to the next newline.
				pos += int64(len(line))
				for rerr == bufio.ErrBufferFull {
					line, rerr = br.ReadSlice('\n')
					pos += int64(len(line))
				}
				if rerr != nil {
					break
				}
				continue
			}
			if rerr != nil { // EOF, maybe with a partial line
				if len(line) > 0 && last {
					fh.Close()
					return 0, 0, nil
				}
				break
			}
			n := int64(len(line))
			body := line[:len(line)-1]
			if splitAudit(body, &f) && q.match(&f) && utf8.Valid(body) {
				if !emit(body) {
					fh.Close()
					return seq, uint64(pos), nil
				}
				emitted++
			}
			pos += n
			scanned += n
			if emitted >= limit || scanned >= scanBudget {
				fh.Close()
				return seq, uint64(pos), nil
			}
		}
		fh.Close()
	}
	return 0, 0, nil
}

// serveAudit answers CallAudit.
func (r *Router) serveAudit(req *rfc.Request, reply *wire.Params) wire.Errno {
	if r.closed.Load() {
		return wire.ECLOSED
	}
	if r.audit == nil {
		return wire.ENOENT
	}
	name := req.Param(0).Bytes()
	since, until := int64(req.Param(1).Uint64()), int64(req.Param(2).Uint64())
	limit := req.Param(4).Uint64()
	if limit == 0 || limit > MaxAuditLimit || since < 0 || until < 0 {
		return wire.EINVAL
	}
	cl, port, ok := parseClientFilter(string(req.Param(3).Bytes()))
	if !ok {
		return wire.EINVAL
	}
	q := auditFilter{name: name, since: since, until: until, client: cl, port: port}
	file, off := req.Param(5).Uint64(), req.Param(6).Uint64()
	if file == 0 && off == 0 {
		// A new query sees every record queued before it.
		r.audit.flush(100 * time.Millisecond)
	}
	reply.Uint64(0)
	reply.Uint64(0)
	nf, no, err := scanAudit(r.audit.dir, &q, file, off, int(limit), r.cfg.QueryScanBytes, func(line []byte) bool {
		if reply.Len()+wire.ParamHdrSize+len(line) > reply.Cap() || reply.Count() >= wire.MaxParams {
			return false
		}
		reply.Value(wire.Value{Type: wire.TypeString, Raw: line})
		return true
	})
	if err != nil {
		return wire.EPROTO
	}
	seg := reply.Segment()
	putU64(seg[wire.ParamHdrSize:], nf)
	putU64(seg[2*wire.ParamHdrSize+8:], no)
	return wire.OK
}

// putU64 writes v big-endian into b[:8].
func putU64(b []byte, v uint64) {
	_ = b[7]
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// AuditFilter is a query of the audit trail (rfcctl audit).
type AuditFilter struct {
	Call   string    // call name, required
	Since  time.Time // zero: no lower bound on the start time
	Until  time.Time // zero: no upper bound (exclusive)
	Client string    // "" any, "ip" or "ip:port"
	Limit  int       // 0: DefaultAuditLimit; at most MaxAuditLimit
}

// AuditQuery asks the router at addr for the records matching f, page by
// page, and returns them in file order (oldest first). It returns what it
// gathered with the first error. EINVAL for a limit past MaxAuditLimit.
func AuditQuery(ctx context.Context, ep *rfc.Endpoint, addr netip.AddrPort, f AuditFilter) ([]AuditEntry, error) {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultAuditLimit
	}
	if limit < 0 || limit > MaxAuditLimit || f.Call == "" {
		return nil, wire.EINVAL
	}
	var since, until uint64
	if !f.Since.IsZero() {
		since = uint64(f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		until = uint64(f.Until.UnixNano())
	}
	maxDg := ep.Config().MaxDatagram
	buf := make([]byte, maxDg-wire.HeaderSize)
	var ps wire.Params
	var rep rfc.Reply
	var out []AuditEntry
	var file, off uint64
	for len(out) < limit {
		ps.Reset(buf)
		ps.String(f.Call)
		ps.Uint64(since)
		ps.Uint64(until)
		ps.String(f.Client)
		ps.Uint64(uint64(limit - len(out)))
		ps.Uint64(file)
		ps.Uint64(off)
		rfc.AppendPad(&ps, maxDg)
		if e := ps.Err(); e != wire.OK {
			return out, e
		}
		if err := ep.Call(ctx, addr, CallAudit, &ps, &rep); err != nil {
			return out, err
		}
		if rep.NParams() < 2 {
			return out, wire.EPROTO
		}
		file, off = rep.Param(0).Uint64(), rep.Param(1).Uint64()
		for i := 2; i < rep.NParams(); i++ {
			e, err := ParseAuditLine(rep.Param(i).Str())
			if err != nil {
				return out, err
			}
			out = append(out, e)
		}
		if file == 0 && off == 0 {
			break
		}
	}
	return out, nil
}
