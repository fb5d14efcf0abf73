package route

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"sync"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/wire"
)

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
	cl, port, ok := audit.ParseClient(string(req.Param(3).Bytes()))
	if !ok {
		return wire.EINVAL
	}
	q := audit.Filter{Name: name, Since: since, Until: until, Client: cl, Port: port}
	file, off := req.Param(5).Uint64(), req.Param(6).Uint64()
	grant := r.scan.take(time.Now(), &r.cfg)
	if grant == 0 {
		return wire.EBUSY
	}
	if file == 0 && off == 0 {
		// A new query sees every record queued before it.
		r.audit.Flush(100 * time.Millisecond)
	}
	fileAt := reply.ReserveUint64() // where the next page starts, known after this one
	offAt := reply.ReserveUint64()
	full := false // a selected line did not fit the page
	nf, no, read, err := r.audit.Scan(&q, file, off, int(limit), grant, func(line []byte) bool {
		if reply.Len()+wire.ParamHdrSize+len(line) > reply.Cap() || reply.Count() >= wire.MaxParams {
			full = true
			return false
		}
		reply.Value(wire.Value{Type: wire.TypeString, Raw: line})
		return true
	})
	r.scan.give(grant, read, &r.cfg)
	if errors.Is(err, audit.ErrCursor) {
		return wire.EINVAL
	}
	if err != nil {
		return wire.EPROTO
	}
	if full && reply.Count() == 2 {
		// Not even one line fits: a page without lines would send the
		// client back to the same cursor.
		return wire.EMSGSIZE
	}
	reply.SetUint64(fileAt, nf)
	reply.SetUint64(offAt, no)
	return wire.OK
}

// queryScanBurst is how many pages of QueryScanBytes the query budget
// holds when no query has run for a while.
const queryScanBurst = 4

// queryBudget is the router's allowance of audit bytes that CallAudit
// pages may read, one for every client: a request costs its sender one
// small datagram and the router the bytes its page reads, and a source
// address proves nothing (a forged one costs nothing more), so only an
// allowance shared by all bounds what a flood of queries costs the node.
// It fills at Config.QueryScanRate bytes a second up to queryScanBurst
// pages of QueryScanBytes. A page takes up to QueryScanBytes of it and
// gives back what it did not read, less audit.ScanMin, the least a page
// costs (the listing and opening of the files); a page that finds less
// than audit.ScanMin is answered EBUSY before it touches the disk.
type queryBudget struct {
	mu    sync.Mutex // guards the fields below
	avail int64      // bytes a page may read now
	last  time.Time  // when avail was last filled
}

// fillLocked adds what the rate gave since the last fill.
func (b *queryBudget) fillLocked(now time.Time, c *Config) {
	limit := queryScanBurst * c.QueryScanBytes
	if b.last.IsZero() {
		b.avail, b.last = limit, now
		return
	}
	d := now.Sub(b.last)
	if d <= 0 {
		return
	}
	b.last = now
	// In float64, and capped before it is converted: d times the rate
	// overflows an int64 after minutes, and their quotient can be past
	// the int64 range too (Config bounds the rate only from below), where
	// the conversion is undefined (math.MinInt64 on amd64).
	if add := float64(d) * float64(c.QueryScanRate) / float64(time.Second); add < float64(limit-b.avail) {
		b.avail += int64(add)
	} else {
		b.avail = limit
	}
}

// take returns the bytes a page may read now, 0 if it must wait.
func (b *queryBudget) take(now time.Time, c *Config) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fillLocked(now, c)
	if b.avail < audit.ScanMin {
		return 0
	}
	g := min(b.avail, c.QueryScanBytes)
	b.avail -= g
	return g
}

// give returns what a page granted grant bytes did not read of them.
func (b *queryBudget) give(grant, read int64, c *Config) {
	back := grant - max(read, audit.ScanMin)
	if back <= 0 {
		return
	}
	b.mu.Lock()
	b.avail = min(queryScanBurst*c.QueryScanBytes, b.avail+back)
	b.mu.Unlock()
}

// auditBound returns t as a since or until bound of CallAudit, in Unix ns
// within what the router takes (1 to math.MaxInt64; 0 is no bound): a
// time before 1970 as 1, one after 2262 as math.MaxInt64, the same
// records either way. UnixNano alone is undefined outside that range: it
// wrapped, and the router refused the bound or matched nothing.
func auditBound(t time.Time) uint64 {
	switch {
	case t.Before(time.Unix(0, 1)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// The pause of AuditQuery before it asks again for a page answered
// EBUSY: about the time the default QueryScanRate takes to refill a page
// of the default QueryScanBytes at first, doubling while it is refused.
const (
	auditBusyMin = 2 * time.Millisecond
	auditBusyMax = 200 * time.Millisecond
)

// AuditFilter is a query of the audit trail (rfcctl audit).
type AuditFilter struct {
	Call   string    // call name, required
	Since  time.Time // zero: no lower bound on the start time
	Until  time.Time // zero: no upper bound (exclusive)
	Client string    // "" any, "ip" or "ip:port"
	Limit  int       // 0: DefaultAuditLimit; at most MaxAuditLimit
	// PageTimeout bounds each page, its EBUSY pauses included (0: the
	// context alone bounds them): a query of a long trail takes about
	// its size over the router's QueryScanRate, however quick each page.
	PageTimeout time.Duration
}

// AuditQuery asks the router at addr for the records matching f, page by
// page, and returns them in file order (oldest first). It returns what it
// gathered with the first error. EINVAL for a limit past MaxAuditLimit.
// A page answered EBUSY (the router's QueryScanRate spent) is asked
// again after a pause, until ctx or the page's f.PageTimeout ends.
func AuditQuery(ctx context.Context, ep *rfc.Endpoint, addr netip.AddrPort, f AuditFilter) ([]audit.Entry, error) {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultAuditLimit
	}
	if limit < 0 || limit > MaxAuditLimit || f.Call == "" {
		return nil, wire.EINVAL
	}
	var since, until uint64
	if !f.Since.IsZero() {
		since = auditBound(f.Since)
	}
	if !f.Until.IsZero() {
		until = auditBound(f.Until)
	}
	maxDg := ep.Config().MaxDatagram
	buf := make([]byte, maxDg-wire.HeaderSize)
	var ps wire.Params
	var rep rfc.Reply
	var out []audit.Entry
	var file, off uint64
	busy := rfc.Backoff{Min: auditBusyMin, Max: auditBusyMax}
	pctx, pageEnd := ctx, context.CancelFunc(nil) // the page's context
	defer func() {
		if pageEnd != nil {
			pageEnd()
		}
	}()
	newPage := true
	for len(out) < limit {
		if newPage && f.PageTimeout > 0 {
			if pageEnd != nil {
				pageEnd()
			}
			c, cancel := context.WithTimeout(ctx, f.PageTimeout)
			pctx, pageEnd = c, cancel
		}
		newPage = false
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
		if err := ep.Call(pctx, addr, CallAudit, &ps, &rep); err != nil {
			// EBUSY: the router's query budget (QueryScanRate) is spent
			// for now; the same page is asked again after a pause.
			if err == wire.EBUSY && busy.Wait(pctx, nil) {
				continue
			}
			return out, err
		}
		busy.Reset()
		newPage = true
		if rep.NParams() < 2 {
			return out, wire.EPROTO
		}
		askedFile, askedOff := file, off
		file, off = rep.Param(0).Uint64(), rep.Param(1).Uint64()
		if rep.NParams() == 2 && file == askedFile && off == askedOff && (file != 0 || off != 0) {
			return out, wire.EPROTO // a page that does not advance would be asked again forever
		}
		for i := 2; i < rep.NParams(); i++ {
			e, err := audit.ParseLine(rep.Param(i).Str())
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
