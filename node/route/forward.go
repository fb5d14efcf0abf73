package route

import (
	"context"
	"net/netip"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// routedCall is one registered routed call number.
type routedCall struct {
	RoutedCall
	fwdNo uint16
}

// forwardScratch is what one forwarding handler works with: the
// forwarded request's parameters, the member's reply, and the audit
// record. One per worker at a time, from Router.scratch.
type forwardScratch struct {
	buf   []byte
	ps    wire.Params
	rep   []byte // the member's reply segment
	nrep  int    // and its parameter count
	timer *time.Timer
	addr  [64]byte
	rec   auditRecord
}

// call sends the forwarded request in s.ps to m and waits for the reply
// at most d, without allocating: the engine's pending call and a timer
// kept in the scratch replace a context per call. On success the reply
// segment is copied into s.rep.
func (r *Router) call(s *forwardScratch, m netip.AddrPort, callNo uint16, d time.Duration) wire.Errno {
	p, err := r.ep.Go(context.Background(), m, callNo, &s.ps)
	if err != nil {
		return wire.AsErrno(err)
	}
	s.timer.Reset(d)
	select {
	case <-p.Done():
		s.timer.Stop()
	case <-s.timer.C:
		p.Release() // abandons the call; a late reply is dropped
		return wire.ETIMEDOUT
	}
	e := wire.AsErrno(p.Err())
	if e == wire.OK {
		rp := p.Reply()
		s.rep = append(s.rep[:0], rp.Segment()...)
		s.nrep = rp.NParams()
	}
	p.Release()
	return e
}

// attempt is the outcome of the forwarding attempts of one call.
type attempt struct {
	errno   wire.Errno
	dest    netip.AddrPort
	prev    netip.AddrPort
	prevErr wire.Errno
	tries   int
}

// forward is the handler of every routed call number: resolve the path,
// forward to the active member (failing over as docs/ROUTE.md describes),
// copy the member's reply, count, notify the member of a failure, audit.
func (r *Router) forward(rc *routedCall, req *rfc.Request, reply *wire.Params) wire.Errno {
	if r.closed.Load() {
		return wire.ECLOSED
	}
	start := time.Now()
	s := r.scratch.Get().(*forwardScratch)
	defer r.scratch.Put(s)
	var at attempt
	path := req.Param(0).Bytes()
	mt := r.table.Load()
	var cs *clusterState
	if _, name, ok := longestMount(mt.mounts, path); ok && len(path) <= MaxPathLen {
		cs = mt.clusters[name]
	}
	if cs == nil {
		at.errno = wire.ENOENT
		if len(path) > MaxPathLen {
			at.errno = wire.EINVAL
		}
	} else {
		s.ps.Reset(s.buf)
		s.ps.Uint64(uint64(req.Src))
		s.ps.Value(wire.Value{Type: wire.TypeString, Raw: req.From.AppendTo(s.addr[:0])})
		s.ps.Uint64(req.CallID)
		s.ps.AppendSegment(req.Segment(), req.NParams())
		if e := s.ps.Err(); e != wire.OK {
			at.errno = e
		} else {
			r.attempts(cs, rc, req, s, start, &at)
		}
		if at.errno == wire.OK {
			reply.AppendSegment(s.rep, s.nrep)
			at.errno = reply.Err()
		}
	}
	end := time.Now()
	if cs != nil {
		cs.ctr.record(int64(end.Sub(start)), at.errno != wire.OK)
		if at.errno != wire.OK {
			r.notice(cs, rc, req, s, &at, end)
		}
	}
	if r.audit != nil {
		rec := &s.rec
		rec.start, rec.end = start.UnixNano(), end.UnixNano()
		rec.client, rec.node, rec.callID, rec.callNo = req.From, req.Src, req.CallID, req.CallNo
		rec.name, rec.errno = rc.Name, at.errno
		rec.cluster = ""
		if cs != nil {
			rec.cluster = cs.name
		}
		rec.dest, rec.prev, rec.prevErr, rec.tries = at.dest, at.prev, at.prevErr, uint8(at.tries)
		rec.nparams = uint16(renderParams(&rec.params, req.Packet, 0, r.cfg.AuditValueMax))
		r.audit.submit(rec)
	}
	return at.errno
}

// attempts sends the forwarded request in s.ps to the members of cs,
// starting with the one believed active, until one answers with anything
// but a failover condition:
//
//   - ENODEAD (the engine holds the member dead: the heartbeat service
//     declared it so) or ETIMEDOUT: if it was the active member, promote
//     the next live member with CallSetRole(true) and try it;
//   - ENOTACTIVE: try the next member without promoting it; a member
//     that then answers is remembered as the active one.
//
// Each member is tried at most once. On success the reply is in s.rep.
func (r *Router) attempts(cs *clusterState, rc *routedCall, req *rfc.Request, s *forwardScratch, start time.Time, at *attempt) {
	overall := start.Add(r.cfg.ForwardTimeout * time.Duration(len(cs.members)))
	if req.Deadline != 0 {
		d := start.Add(time.Duration(req.Deadline-r.ep.Now()) - r.cfg.ReplyMargin)
		if d.Before(overall) {
			overall = d
		}
	}
	n := len(cs.members)
	idx := int(cs.active.Load())
	at.errno = wire.ETIMEDOUT
	for at.tries < n {
		remain := time.Until(overall)
		if remain <= 0 {
			at.errno = wire.ETIMEDOUT
			return
		}
		if remain > r.cfg.ForwardTimeout {
			remain = r.cfg.ForwardTimeout
		}
		m := cs.members[idx]
		if at.tries > 0 {
			at.prev, at.prevErr = at.dest, at.errno
		}
		at.tries++
		at.dest = m
		at.errno = r.call(s, m, rc.fwdNo, remain)
		switch at.errno {
		case wire.OK:
			if int(cs.active.Load()) != idx {
				cs.active.Store(int32(idx))
				r.log.Info("route: member answers as active", "cluster", cs.name, "member", m.String())
			}
			return
		case wire.ENODEAD, wire.ETIMEDOUT:
			next := r.promote(cs, idx, at.errno)
			if next < 0 {
				return
			}
			idx = next
		case wire.ENOTACTIVE:
			idx = (idx + 1) % n
		default:
			return
		}
	}
}

// promote replaces the failed active member cs.members[failed]: the next
// member in table order that the engine does not hold dead is told to
// become active (CallSetRole true) and, if it agrees, becomes the active
// one. Concurrent promotions of one sub-cluster are serialized; a call
// that finds the promotion already made uses its result. It returns the
// member to try next, -1 if none.
func (r *Router) promote(cs *clusterState, failed int, why wire.Errno) int {
	cs.promote.Lock()
	defer cs.promote.Unlock()
	if cur := int(cs.active.Load()); cur != failed {
		return cur
	}
	n := len(cs.members)
	var ps wire.Params
	var buf [16]byte
	for j := 1; j < n; j++ {
		cand := (failed + j) % n
		if info, ok := r.ep.Peer(cs.members[cand]); ok && info.State == rfc.PeerDead {
			continue
		}
		ps.Reset(buf[:])
		ps.Bool(true)
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ActivateTimeout)
		err := r.ep.Call(ctx, cs.members[cand], CallSetRole, &ps, nil)
		cancel()
		if err != nil {
			continue
		}
		cs.active.Store(int32(cand))
		cs.ctr.failovers.Add(1)
		r.log.Warn("route: standby promoted", "cluster", cs.name, "failed", cs.members[failed].String(),
			"reason", why.String(), "active", cs.members[cand].String())
		return cand
	}
	return -1
}

// notice sends the member the failed call went to (or, if the engine
// holds it dead, the first other member it can reach) a one-way
// CallNotice naming the client. Best effort: a notice is sent once and
// may be lost.
func (r *Router) notice(cs *clusterState, rc *routedCall, req *rfc.Request, s *forwardScratch, at *attempt, now time.Time) {
	s.ps.Reset(s.buf)
	s.ps.Uint64(uint64(req.Src))
	s.ps.Value(wire.Value{Type: wire.TypeString, Raw: req.From.AppendTo(s.addr[:0])})
	s.ps.Uint64(req.CallID)
	s.ps.Uint64(uint64(req.CallNo))
	s.ps.String(rc.Name)
	s.ps.Uint64(uint64(at.errno))
	s.ps.Value(req.Param(0))
	s.ps.Uint64(uint64(now.UnixNano()))
	if s.ps.Err() != wire.OK {
		return
	}
	first := at.dest
	if !first.IsValid() {
		first = cs.members[cs.active.Load()]
	}
	if r.ep.Send(first, CallNotice, &s.ps) == nil {
		r.notices.Add(1)
		return
	}
	for _, m := range cs.members {
		if m != first && r.ep.Send(m, CallNotice, &s.ps) == nil {
			r.notices.Add(1)
			return
		}
	}
}
