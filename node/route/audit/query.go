package audit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"fastcall/rfc"
	"fastcall/wire"
)

// Entry is one parsed audit record.
type Entry struct {
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

// splitLine splits a line (without newline) into its fields; false if
// it does not have exactly auditFields fields.
func splitLine(line []byte, out *[auditFields][]byte) bool {
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

// ParseLine parses one audit line (with or without its newline).
// EPROTO if it is malformed.
func ParseLine(line string) (Entry, error) {
	line = trimNL(line)
	var f [auditFields][]byte
	if !splitLine([]byte(line), &f) {
		return Entry{}, wire.EPROTO
	}
	var e Entry
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
			return Entry{}, wire.EPROTO
		}
	}
	errno, ok := wire.ErrnoByName(string(f[fOutcome]))
	if !ok {
		v, err := parseErrnoText(string(f[fOutcome]))
		if err != nil {
			return Entry{}, wire.EPROTO
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

// Filter selects records: exact call name, start in [Since, Until)
// (0: unbounded), and the client's address (any port if Port is 0).
type Filter struct {
	Name         []byte
	Since, Until int64
	Client       netip.Addr // invalid: any
	Port         uint16
}

// ParseClient parses "", "ip" or "ip:port", read as the engine names a
// sender (rfc.PeerAddr): an IPv4-mapped address as the IPv4 one, a
// link-local zone as its interface's index.
func ParseClient(s string) (netip.Addr, uint16, bool) {
	if s == "" {
		return netip.Addr{}, 0, true
	}
	// A record holds the address a datagram came from, as the engine
	// names it: read in another form (IPv4-mapped, a zone by its
	// interface's name) the filter matched no record.
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return rfc.PeerAddr(ap).Addr(), ap.Port(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return rfc.PeerAddr(netip.AddrPortFrom(a, 0)).Addr(), 0, true
}

// match reports whether the split line is selected.
func (q *Filter) match(f *[auditFields][]byte) bool {
	if !bytes.Equal(f[fName], q.Name) {
		return false
	}
	if q.Since != 0 || q.Until != 0 {
		start, err := strconv.ParseInt(string(f[fStartNs]), 10, 64)
		if err != nil || (q.Since != 0 && start < q.Since) || (q.Until != 0 && start >= q.Until) {
			return false
		}
	}
	if q.Client.IsValid() {
		ap, err := netip.ParseAddrPort(string(f[fClient]))
		if err != nil || ap.Addr() != q.Client || (q.Port != 0 && ap.Port() != q.Port) {
			return false
		}
	}
	return true
}

// ErrCursor is Scan's error for a cursor offset past the end of its file.
var ErrCursor = errors.New("audit: cursor past the end of its file")

// ScanMin is the smallest budget Scan takes: the newline before a cursor
// and a whole line of this log fit in it, so that a scan from a cursor it
// gave always gets past a line.
const ScanMin = 2 * auditLineMax

// scanBufSize is the read buffer of a scan: past a line of this log, so
// that a longer one is known as none of its lines.
const scanBufSize = 16 << 10

// errBudget ends a budgetReader.
var errBudget = errors.New("audit: scan budget spent")

// budgetReader reads from r until left bytes were read, then fails with
// errBudget: a scan counts what it reads at the file, read-ahead and
// skipped bytes included, not the lines it examines.
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errBudget
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// Scan reads the audit files of the Log from the cursor (file, off) on,
// (0, 0) meaning the oldest file, and calls emit for every selected line
// (without newline) until emit returns false, limit lines were emitted,
// or budget bytes (at least ScanMin) were read from the files. It
// returns the cursor of the first line not yet examined, (0, 0) when
// every file was read to its end, and the bytes it read. A line without
// its newline at the end of the newest file is still being written and
// ends the scan; elsewhere it is a damaged tail and skipped. A scan from
// a cursor reads from the byte before it and examines no line before the
// first newline: a cursor Scan gave follows a newline, and one inside a
// line (the budget ran out in a line too long to be a record, or the
// client made it up) resumes at the next line.
func (a *Log) Scan(q *Filter, file, off uint64, limit int, budget int64,
	emit func(line []byte) bool) (nextFile, nextOff uint64, read int64, err error) {
	seqs, err := Files(a.fs, a.dir)
	if err != nil {
		return 0, 0, 0, err
	}
	budget = max(budget, ScanMin)
	var f [auditFields][]byte
	emitted := 0
	lim := budgetReader{left: budget}
	var br *bufio.Reader
	for i, seq := range seqs {
		if seq < file {
			continue
		}
		pos := int64(0)
		skip := false // in a line not to examine, up to its newline
		if seq == file {
			pos = int64(off)
		}
		if lim.left <= 0 {
			return seq, uint64(pos), budget, nil
		}
		fh, err := a.fs.Open(filepath.Join(a.dir, FileName(seq)))
		if err != nil {
			continue // deleted by a rotation since the listing
		}
		if seq == file {
			// A file only grows: a cursor past its end is none this
			// log gave.
			size, err := fh.Seek(0, io.SeekEnd)
			if err != nil {
				fh.Close()
				return 0, 0, budget - lim.left, err
			}
			if off > uint64(size) {
				fh.Close()
				return 0, 0, budget - lim.left, ErrCursor
			}
			if off > 0 {
				pos, skip = pos-1, true
			}
		}
		if _, err := fh.Seek(pos, io.SeekStart); err != nil {
			fh.Close()
			return 0, 0, budget - lim.left, err
		}
		lim.r = fh
		if br == nil {
			br = bufio.NewReaderSize(&lim, scanBufSize)
		} else {
			br.Reset(&lim)
		}
		last := i == len(seqs)-1
		for {
			line, rerr := br.ReadSlice('\n')
			if rerr == nil {
				n := int64(len(line))
				if !skip {
					body := line[:n-1]
					if splitLine(body, &f) && q.match(&f) && utf8.Valid(body) {
						if !emit(body) {
							fh.Close()
							return seq, uint64(pos), budget - lim.left, nil
						}
						emitted++
					}
				}
				pos += n
				skip = false
				if emitted >= limit {
					fh.Close()
					return seq, uint64(pos), budget - lim.left, nil
				}
				continue
			}
			if rerr == bufio.ErrBufferFull {
				// Not a line this router wrote: skip to the next newline.
				pos += int64(len(line))
				skip = true
				continue
			}
			if rerr == errBudget {
				// The next page starts at this line, or inside it when
				// it is none of this log's.
				if skip || len(line) > auditLineMax {
					pos += int64(len(line))
				}
				fh.Close()
				return seq, uint64(pos), budget, nil
			}
			// EOF, maybe with a partial line.
			if len(line) > 0 && last {
				fh.Close()
				return 0, 0, budget - lim.left, nil
			}
			break
		}
		fh.Close()
	}
	return 0, 0, budget - lim.left, nil
}
