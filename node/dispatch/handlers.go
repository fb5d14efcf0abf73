package dispatch

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// registerCalls adds the dispatch calls to the endpoint. Both run on a
// worker: SUBMIT waits for the marker store.
func (d *Dispatcher) registerCalls() error {
	if err := d.ep.Register(CallSubmit, "dispatch-submit", schemaSubmit, 0, d.serveSubmit); err != nil {
		return err
	}
	return d.ep.Register(CallStatus, "dispatch-status", schemaStatus, rfc.Idempotent, d.serveStatus)
}

// parseTargets parses "host:port,host:port" into dst. Malformed text
// (an empty item, a trailing comma included) is EINVAL; more than max
// targets ENOSPC.
func parseTargets(s string, max int, dst []Target) ([]Target, wire.Errno) {
	for len(s) > 0 {
		if len(dst) == max {
			return dst, wire.ENOSPC
		}
		item := s
		if i := strings.IndexByte(s, ','); i >= 0 {
			item, s = s[:i], s[i+1:]
			if s == "" {
				return dst, wire.EINVAL // a comma ends the list
			}
		} else {
			s = ""
		}
		a, err := netip.ParseAddrPort(strings.TrimSpace(item))
		if err != nil {
			return dst, wire.EINVAL
		}
		dst = append(dst, Target{Addr: a})
	}
	return dst, wire.OK
}

// serveSubmit answers CallSubmit. Beyond Submit's checks, a remote
// operation names at most MaxRemoteTargets targets, each once and each in
// Config.RemoteTargets (EPERM otherwise), with a deadline of at most
// MaxRemoteDeadline, and a call number of the engine (ping, stats, calls)
// or at or above wire.CallToolBase (EPERM otherwise).
func (d *Dispatcher) serveSubmit(req *rfc.Request, reply *wire.Params) wire.Errno {
	kind, ok := KindByName(string(req.Param(subParamKind).Bytes()))
	if !ok {
		return wire.EINVAL
	}
	no, ok := req.Param(subParamCallNo).Uint16()
	if !ok || no == 0 {
		return wire.EINVAL
	}
	// Nor a call of fastcall's own services: its targets would take it
	// as the dispatcher's own (a SUBMIT would fan out again from every
	// dispatcher it names, a heartbeat, registry or route call would
	// speak for this node). The engine's own calls only read, and their
	// replies come back here: a fan-out ping is a health check.
	if no >= wire.CallHeartbeatBase && no < wire.CallToolBase {
		d.stats.remoteRefused.Add(1)
		return wire.EPERM
	}
	seg := req.Param(subParamSeg).Bytes()
	count, r := wire.CheckSegment(seg)
	if r != wire.ReasonNone {
		return wire.EINVAL
	}
	ms := req.Param(subParamDeadline).Int64()
	maxDl := min(d.cfg.MaxRemoteDeadline, d.cfg.MaxDeadline)
	if ms < 0 || ms > int64(maxDl/time.Millisecond) {
		return wire.EINVAL
	}
	if ms == 0 {
		ms = int64(min(d.cfg.DefaultDeadline, maxDl) / time.Millisecond)
	}
	targets, e := parseTargets(req.Param(subParamTargets).Str(), min(d.cfg.MaxRemoteTargets, d.cfg.MaxTargets), nil)
	if e != wire.OK {
		return e
	}
	// A remote SUBMIT sends only to the configured targets: never to an
	// address its sender chose (docs/DISPATCH.md, "Remote SUBMIT").
	for i := range targets {
		if !d.remoteOK[rfc.PeerAddr(targets[i].Addr)] {
			d.stats.remoteRefused.Add(1)
			return wire.EPERM
		}
	}
	op := Op{
		Resource: req.Param(subParamResource).Str(),
		Kind:     kind,
		Call:     Call{No: no, Seg: seg, Count: count},
		Targets:  targets,
		Deadline: time.Duration(ms) * time.Millisecond,
	}
	// The marker's compare-and-set is bounded by the caller's budget and
	// by MarkerTimeout.
	wait := d.cfg.MarkerTimeout
	if req.Deadline != 0 {
		if left := time.Duration(req.Deadline - d.ep.Now()); left < wait {
			wait = left
		}
	}
	if wait < remoteSubmitMinTimeout {
		wait = remoteSubmitMinTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id, err := d.Submit(ctx, &op)
	if err != nil {
		return wire.AsErrno(err)
	}
	d.stats.remoteSubmits.Add(1)
	reply.Uint64(id)
	return wire.OK
}

func (d *Dispatcher) serveStatus(req *rfc.Request, reply *wire.Params) wire.Errno {
	op := d.lookup(req.Param(stParamID).Uint64())
	if op == nil {
		return wire.ENOENT
	}
	cursor := req.Param(stParamCursor).Uint64()
	if cursor > uint64(len(op.targets)) {
		return wire.EINVAL
	}
	st := op.status(int(cursor), stMaxEntries)
	// Count the entries that fit before writing: the next cursor leads
	// the reply.
	room := reply.Cap() - (stReplyHead-2)*wire.ParamFixed8Size - 2*wire.ParamHdrSize - len(st.Kind.String()) - len(st.Resource)
	if room < 0 {
		return wire.EMSGSIZE
	}
	var text [64]byte
	n := 0
	for n < len(st.Outcomes) {
		sz := stEntryFixed + len(st.Outcomes[n].Addr.AppendTo(text[:0]))
		if sz > room {
			break
		}
		room -= sz
		n++
	}
	if n == 0 && len(st.Outcomes) > 0 {
		return wire.EMSGSIZE // not even one entry fits: the request is too small
	}
	next := uint64(0)
	if int(cursor)+n < st.Targets {
		next = cursor + uint64(n)
	}
	reply.Uint64(next)
	reply.Uint64(uint64(st.State))
	reply.String(st.Kind.String())
	reply.String(st.Resource)
	reply.Uint64(uint64(st.Targets))
	reply.Uint64(uint64(st.Done))
	reply.Uint64(uint64(st.Failed))
	reply.Uint64(uint64(st.Elapsed / time.Microsecond))
	for i := 0; i < n; i++ {
		t := &st.Outcomes[i]
		reply.String(string(t.Addr.AppendTo(text[:0])))
		el := notDone
		if t.Done {
			el = uint64(t.Elapsed / time.Microsecond)
		}
		reply.Uint64(uint64(t.Errno))
		reply.Uint64(el)
	}
	return reply.Err()
}
