package route

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/wire"
)

// Router is the federation router on one endpoint. All methods are safe
// for concurrent use.
type Router struct {
	ep        *rfc.Endpoint
	cfg       Config
	src       MountSource
	log       *slog.Logger
	table     atomic.Pointer[mountTable] // snapshot read by every routed call
	tbl       tableState
	calls     []*routedCall
	audit     *audit.Log    // nil when Config.AuditDir is empty
	scan      queryBudget   // audit bytes CallAudit pages may read
	fwds      sync.Pool     // *forwarding
	fo        failoverQueue // calls whose attempt failed, for the failover goroutine
	stopWatch func()
	notices   atomic.Uint64 // failure notices sent
	roleEpoch atomic.Uint64 // the last CallSetRole epoch sent (nextRoleEpoch)
	closed    atomic.Bool
	closeOnce sync.Once
	// inflight counts the routed calls between forward and finish; idle
	// is closed once the router is closed and none is left (callEnded),
	// so that Close writes their audit records.
	inflight atomic.Int64
	idle     chan struct{}
	idleOnce sync.Once
}

// New builds a router on ep: it opens the audit log, subscribes to the
// mount table under cfg.TablePrefix in src and reads it, sends
// set-role(false) to every member but the one it makes active in each
// sub-cluster if ep is started (each bounded by ActivateTimeout; see
// failoverQueue.owe), registers
// CallAudit, CallRouteStats and every routed call of cfg.Calls on ep, and
// starts the failover goroutine and the audit writer. ep may be started or not; its MaxPending
// bounds the routed calls in flight (no goroutine waits for a member:
// see forward).
//
// Registered calls cannot be removed: after Close they answer ECLOSED. A
// failure after some calls were registered leaves them answering ECLOSED.
func New(ep *rfc.Endpoint, cfg Config, src MountSource) (*Router, error) {
	if ep == nil || src == nil {
		return nil, wire.EINVAL
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &Router{ep: ep, cfg: cfg, src: src, log: cfg.Logger, idle: make(chan struct{})}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.tbl.init()
	r.table.Store(newMountTable(nil, nil))
	maxSeg := ep.Config().MaxDatagram - wire.HeaderSize
	r.fwds.New = func() any { return r.newForwarding(maxSeg) }
	r.fo.init(r, ep.Config().MaxPending)
	if cfg.AuditDir != "" {
		a, err := audit.Open(audit.Config{Dir: cfg.AuditDir, RotateBytes: cfg.AuditRotateBytes, Keep: cfg.AuditKeep, Buffer: cfg.AuditBuffer, FS: cfg.AuditFS})
		if err != nil {
			return nil, err
		}
		r.audit = a
	}
	fail := func(err error) (*Router, error) {
		r.closed.Store(true)
		if r.stopWatch != nil {
			r.stopWatch()
		}
		if r.audit != nil {
			r.audit.Start()
			r.audit.Close()
		}
		go r.fo.run()
		r.fo.close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := r.load(ctx)
	cancel()
	if err != nil {
		return fail(err)
	}
	// On a started endpoint the demotions owed for the table as loaded
	// are sent once before any call is routed; those not acknowledged
	// are re-sent by the failover goroutine (it is not running yet: New
	// owns q.demote). An endpoint not started cannot read the
	// acknowledgements: the failover goroutine sends them once it runs.
	if ep.Started() {
		// The wake-up signal is taken before the list it announces: a
		// sub-cluster the table adds meanwhile signals again, and the
		// failover goroutine takes what New did not.
		select {
		case <-r.fo.owedCh:
		default:
		}
		r.fo.takeOwed()
		r.redemote()
	}
	for _, c := range cfg.Calls {
		rc := &routedCall{RoutedCall: c, fwdNo: c.No + RoutedOffset}
		rc.Schema = append(wire.Schema(nil), c.Schema...)
		r.calls = append(r.calls, rc)
		h := func(req *rfc.Request, d *rfc.Deferred) wire.Errno { return r.forward(rc, req, d) }
		// Not idempotent: the duplicate-request cache absorbs client
		// retransmissions, so a call is forwarded at most once. Inline
		// and deferred: the reader that reads the call forwards it, and
		// the reader that reads the member's reply answers it.
		if err := ep.RegisterDeferred(c.No, c.Name, c.Schema, rfc.Inline, h); err != nil {
			return fail(err)
		}
		ep.NameCall(rc.fwdNo, c.Name+"-fwd")
	}
	if err := ep.Register(CallAudit, "route-audit", schemaAudit, rfc.Idempotent, r.serveAudit); err != nil {
		return fail(err)
	}
	if err := ep.Register(CallRouteStats, "route-stats", schemaRouteStats, rfc.Idempotent, r.serveStats); err != nil {
		return fail(err)
	}
	ep.NameCall(CallNotice, "route-notice")
	ep.NameCall(CallSetRole, "route-set-role")
	go r.fo.run()
	if r.audit != nil {
		r.audit.Start()
	}
	return r, nil
}

// Close stops following the table, ends the calls waiting for a
// failover decision (waiting for the one being decided), waits for the
// routed calls still in flight to end (each within its deadline), writes
// every queued audit record, closes the audit file and stops the writer.
// Routed calls answer ECLOSED from then on. Close is idempotent; it does
// not close the endpoint.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		if r.stopWatch != nil {
			r.stopWatch()
		}
		r.fo.close()
		// Calls forwarded before Close are answered after it: wait for
		// them (each bounded by its deadline) so that their records are
		// written.
		if r.inflight.Load() == 0 {
			r.idleOnce.Do(func() { close(r.idle) })
		}
		<-r.idle
		if r.audit != nil {
			r.audit.Close()
		}
	})
	return nil
}

// callEnded counts a routed call ended (finish) and, once the router is
// closed and none is left, lets Close go on.
func (r *Router) callEnded() {
	if r.inflight.Add(-1) == 0 && r.closed.Load() {
		r.idleOnce.Do(func() { close(r.idle) })
	}
}

// Flush waits until every audit record queued before the call is written
// to the file, at most timeout; it reports whether it completed.
func (r *Router) Flush(timeout time.Duration) bool {
	if r.audit == nil {
		return true
	}
	return r.audit.Flush(timeout)
}

// AuditStats returns the audit writer's counters.
func (r *Router) AuditStats() audit.Stats {
	if r.audit == nil {
		return audit.Stats{}
	}
	return r.audit.Stats()
}

// NoticesSent returns the number of failure notices sent to members.
func (r *Router) NoticesSent() uint64 { return r.notices.Load() }

// statsEntryMax bounds one CallRouteStats entry: a name, six u64 and the
// histogram.
const statsEntryMax = 3*wire.ParamHdrSize + MaxClusterName + 6*wire.ParamFixed8Size + HistBuckets*8

// schemaRouteStats is the request of CallRouteStats: the name after
// which the page starts, padding.
var schemaRouteStats = wire.Schema{wire.TypeString, wire.TypeBytes}

// serveStats answers CallRouteStats. A page starts after the name the
// client gives (the last one it received), not at an index, so that
// sub-clusters added or removed between pages shift no other entry into
// a page already read or past the next one.
func (r *Router) serveStats(req *rfc.Request, reply *wire.Params) wire.Errno {
	after := req.Param(0).Str()
	cs := r.Counters()
	dropped := r.AuditStats().Dropped
	moreAt := reply.ReserveUint64() // 1 if another page follows, known after the page
	more := uint64(0)
	var hist [HistBuckets * 8]byte
	first := sort.Search(len(cs), func(i int) bool { return cs[i].Name > after })
	for i := first; i < len(cs); i++ {
		if reply.Len()+statsEntryMax > reply.Cap() || reply.Count()+8 > wire.MaxParams {
			if i == first {
				return wire.EMSGSIZE // the client did not pad its request
			}
			more = 1
			break
		}
		c := &cs[i]
		reply.String(c.Name)
		reply.Uint64(c.Calls)
		reply.Uint64(c.Errors)
		reply.Uint64(c.Failovers)
		reply.Uint64(dropped)
		reply.Uint64(c.P50us)
		reply.Uint64(c.P99us)
		for j, v := range c.Hist {
			binary.BigEndian.PutUint64(hist[8*j:], v)
		}
		reply.Bytes(hist[:])
	}
	reply.SetUint64(moreAt, more)
	return wire.OK
}
