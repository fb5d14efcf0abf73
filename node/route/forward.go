package route

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/node/internal/closing"
	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/wire"
)

// routedCall is one registered routed call number.
type routedCall struct {
	RoutedCall
	fwdNo uint16
}

// forwarding is one routed call from its arrival until its reply: what
// it keeps of the request (valid only while the handler runs), the
// forwarded request, the attempts made, and the audit record. The
// forwarding handler runs on a reader goroutine and the member's reply
// completes the call on a reader goroutine too: no goroutine waits for
// the member. Records come from Router.fwds and are reused; done is bound
// once per record, so a routed call allocates nothing.
type forwarding struct {
	r        *Router
	rc       *routedCall
	cs       *clusterState
	d        *rfc.Deferred
	start    time.Time
	overall  time.Time // the last moment an attempt may end
	idx      int       // member of the attempt in flight
	cut      bool      // the attempt's bound was cut by the client's deadline
	unknown  bool      // an attempt was sent and got no answer: it may have run
	standby  int       // attempts answered ENOTACTIVE
	noActive bool      // every member tried, none active: handed over to activate one
	view     uint64    // the cluster's role view when the call arrived
	failedAt time.Time // when the attempt handed to the failover goroutine failed
	at       attempt
	src      uint32
	from     netip.AddrPort
	callID   uint64
	callNo   uint16
	path     wire.Value // param 0, over pathBuf
	pathBuf  []byte
	buf      []byte
	ps       wire.Params // the forwarded request
	addr     [64]byte
	rec      audit.Record
	done     func(*rfc.Pending)
}

func (r *Router) newForwarding(maxSeg int) *forwarding {
	f := &forwarding{r: r, buf: make([]byte, maxSeg), pathBuf: make([]byte, 0, MaxPathLen)}
	f.done = f.complete
	return f
}

// attempt is the outcome of the forwarding attempts of one call.
type attempt struct {
	errno   wire.Errno
	dest    netip.AddrPort
	prev    netip.AddrPort
	prevErr wire.Errno
	tries   int
}

// forward is the deferred handler of every routed call number: resolve
// the path and send the call on to the active member. The member's reply
// (or the failure of the attempt) arrives in complete, which fails over
// as docs/ROUTE.md describes, or copies the reply and finishes the call.
func (r *Router) forward(rc *routedCall, req *rfc.Request, d *rfc.Deferred) wire.Errno {
	// Counted before the check: Close sets closed before it waits for
	// the count to reach 0, so a call it does not wait for sees closed.
	r.inflight.Add(1)
	if r.closed.Load() {
		r.callEnded()
		return wire.ECLOSED
	}
	f := r.fwds.Get().(*forwarding)
	f.rc, f.d, f.cs, f.start = rc, d, nil, time.Now()
	f.at = attempt{}
	f.unknown, f.standby, f.noActive = false, 0, false
	f.src, f.from, f.callID, f.callNo = req.Src, req.From, req.CallID, req.CallNo
	path := req.Param(0)
	f.pathBuf = append(f.pathBuf[:0], path.Raw[:min(len(path.Raw), MaxPathLen)]...)
	f.path = wire.Value{Type: path.Type, Raw: f.pathBuf}
	if r.audit != nil {
		f.rec.NParams = uint16(renderParams(&f.rec.Params, req.Packet, 0, r.cfg.AuditValueMax))
	}
	if f.cs, f.at.errno = r.table.Load().resolve(path.Raw); f.cs == nil {
		r.finish(f)
		return wire.OK
	}
	f.ps.Reset(f.buf)
	f.ps.Uint64(uint64(req.Src))
	f.ps.Value(wire.Value{Type: wire.TypeString, Raw: req.From.AppendTo(f.addr[:0])})
	f.ps.Uint64(req.CallID)
	f.ps.AppendSegment(req.Segment(), req.NParams())
	if e := f.ps.Err(); e != wire.OK {
		f.at.errno = e
		r.finish(f)
		return wire.OK
	}
	f.overall = f.start.Add(r.cfg.callBound(len(f.cs.members)))
	if req.Deadline != 0 {
		dl := f.start.Add(time.Duration(req.Deadline-r.ep.Now()) - r.cfg.ReplyMargin)
		if dl.Before(f.overall) {
			f.overall = dl
		}
	}
	f.at.errno = wire.ETIMEDOUT
	f.view = f.cs.role.Load()
	r.try(f, roleIdx(f.view))
	return wire.OK
}

// try sends the forwarded request to member idx of the call's cluster.
// Once the request is out, f belongs to its completion. The attempt is
// bounded by ForwardTimeout and by what remains of the call's overall
// deadline; an attempt cut short by the client's deadline is marked so,
// and its timeout says nothing of the member's health.
func (r *Router) try(f *forwarding, idx int) {
	remain := time.Until(f.overall)
	if remain <= 0 {
		f.at.errno = wire.ETIMEDOUT
		r.finish(f)
		return
	}
	f.cut = remain < r.cfg.ForwardTimeout
	if !f.cut {
		remain = r.cfg.ForwardTimeout
	}
	m := f.cs.members[idx]
	if f.at.tries > 0 {
		f.at.prev, f.at.prevErr = f.at.dest, f.at.errno
	}
	f.at.tries++
	f.at.dest = m
	f.idx = idx
	if err := r.ep.GoFunc(m, f.rc.fwdNo, &f.ps, remain, f.done); err != nil {
		f.at.errno = wire.AsErrno(err)
		r.next(f)
	}
}

// complete is the completion of an attempt: on success the member's reply
// becomes the client's; on failure the next member may be tried.
func (f *forwarding) complete(p *rfc.Pending) {
	r := f.r
	f.at.errno = wire.AsErrno(p.Err())
	if f.at.errno != wire.OK {
		// The request went out: a timeout, or a death declared while
		// it was in flight, leaves its outcome unknown.
		if f.at.errno == wire.ETIMEDOUT || f.at.errno == wire.ENODEAD {
			f.unknown = true
		}
		r.next(f)
		return
	}
	rp := p.Reply()
	dp := f.d.Params()
	dp.AppendSegment(rp.Segment(), rp.NParams())
	f.at.errno = dp.Err()
	// Only a member reached because the one believed active said
	// ENOTACTIVE is learned as active, and only if no other change of
	// the view came meanwhile: a late answer of a replaced member
	// leaves the view alone.
	if f.at.prevErr == wire.ENOTACTIVE && roleIdx(f.view) != f.idx && f.cs.switchActive(f.view, f.idx) {
		r.log.Info("route: member answers as active", "cluster", f.cs.name, "member", f.at.dest.String())
	}
	r.finish(f)
}

// next decides what follows a failed attempt, each member being tried at
// most once:
//
//   - ENODEAD (the engine holds the member dead: the heartbeat service
//     declared it so), or ETIMEDOUT of an attempt that had its whole
//     ForwardTimeout: handed to the failover goroutine, which decides
//     from the router's own evidence whether to promote (failover).
//   - ETIMEDOUT of an attempt cut short by the client's deadline: the
//     call's answer; the client's deadline is no evidence of a death.
//   - ENOTACTIVE: try the next member without promoting it; a member
//     that then answers is remembered as the active one.
//   - every member tried, at least one answered ENOTACTIVE and the last
//     attempt failed too (ENOTACTIVE, ENODEAD or a whole-length
//     ETIMEDOUT): no member is active as far as the router can tell;
//     handed to the failover goroutine, which activates one
//     (activateStandbyLocked).
//   - anything else is the call's answer.
//
// A call that is not idempotent and whose attempt was sent without an
// answer (f.unknown) is never sent again: the failover decision is still
// made, then the call ends ETIMEDOUT (see finish).
func (r *Router) next(f *forwarding) {
	n := len(f.cs.members)
	memberFailed := f.at.errno == wire.ENODEAD || f.at.errno == wire.ETIMEDOUT && !f.cut
	if f.at.errno == wire.ENOTACTIVE {
		f.standby++
	}
	if f.at.tries == n && f.standby > 0 && (f.at.errno == wire.ENOTACTIVE || memberFailed) {
		f.noActive = true
		f.failedAt = time.Now()
		r.fo.enqueue(f)
		return
	}
	if f.at.tries < n {
		switch {
		case memberFailed:
			f.failedAt = time.Now()
			r.fo.enqueue(f)
			return
		case f.at.errno == wire.ENOTACTIVE:
			r.try(f, (f.idx+1)%n)
			return
		}
	}
	r.finish(f)
}

// failoverQueue hands calls whose attempt failed on a member to the one
// failover goroutine. The queue is bounded; a call that finds it full
// (or the router closed) ends with its attempt's error number.
type failoverQueue struct {
	r    *Router
	ch   chan *forwarding
	done chan struct{} // closed when the goroutine has returned
	// demote holds the demotions not acknowledged yet; owned by the
	// failover goroutine.
	demote []demotion
	owedCh chan struct{} // wakes the goroutine for mu.owed; one slot
	wait   rfc.Backoff   // between rounds of demotions; owned by the goroutine
	mu     struct {
		closing.Mutex            // guards Closed and owed; held while a call is queued
		owed          []demotion // demotions handed over by owe, not yet taken
	}
}

func (q *failoverQueue) init(r *Router, size int) {
	q.r = r
	q.ch = make(chan *forwarding, size)
	q.done = make(chan struct{})
	q.owedCh = make(chan struct{}, 1)
	// The first Next seeds the jitter from crypto/rand: done here, on
	// the goroutine that calls New, so that the draw comes in the same
	// order from run to run of a simulation that makes crypto/rand
	// deterministic, not whenever the failover goroutine first waits.
	q.wait = rfc.Backoff{Min: demoteEvery, Max: demoteMax}
	q.wait.Next()
	q.wait.Reset()
}

// owe hands the goroutine demotions to send until acknowledged: every
// member of a sub-cluster but the one the router makes active and those
// in known, when the router first learns the sub-cluster (at start, or
// when the table adds it; known empty) or a member of it (the table adds
// one; known the members listed before). A router does not keep the
// demotions an earlier run of it owed (a fence not acknowledged, a
// promotion not heard); owing them all again re-derives them, so that no
// member it once made active stays active beside the one it routes to.
// A member new to a sub-cluster may be active too: made so for another
// sub-cluster since removed, or by an earlier run. Safe from any
// goroutine.
func (q *failoverQueue) owe(cs *clusterState, known []netip.AddrPort) {
	act := cs.activeIdx()
	added := false
	q.mu.Lock()
	for i, m := range cs.members {
		if i != act && !slices.Contains(known, m) {
			q.mu.owed = append(q.mu.owed, demotion{cs.name, m})
			added = true
		}
	}
	q.mu.Unlock()
	if known != nil && !added {
		return // a change of a known sub-cluster that adds no member
	}
	select {
	case q.owedCh <- struct{}{}:
	default:
	}
}

// takeOwed moves the owed demotions into q.demote. Runs on the failover
// goroutine.
func (q *failoverQueue) takeOwed() {
	q.mu.Lock()
	owed := q.mu.owed
	q.mu.owed = nil
	q.mu.Unlock()
	for _, d := range owed {
		q.r.rememberDemotion(d.cluster, d.member)
	}
}

// enqueue queues f for the failover goroutine without blocking.
func (q *failoverQueue) enqueue(f *forwarding) {
	q.mu.Lock()
	ok := !q.mu.Closed
	if ok {
		select {
		case q.ch <- f:
		default:
			ok = false
		}
	}
	q.mu.Unlock()
	if !ok {
		q.r.finish(f)
	}
}

// close stops taking calls, lets the goroutine end the queued ones and
// waits for it.
func (q *failoverQueue) close() {
	if q.mu.LockToClose() {
		close(q.ch)
		q.mu.Unlock()
	}
	<-q.done
}

// run is the failover goroutine: one per router, started by New. While
// a demotion is unacknowledged it also re-sends the pending demotions,
// waiting between rounds with rfc.Backoff from demoteEvery up to
// demoteMax; the wait starts again from demoteEvery once every demotion
// is acknowledged. Owed demotions (owe) are sent at once.
//
// Events are handled one at a time in a fixed order: owed demotions,
// then a due round, then queued calls. A round is due at most once a
// wait and lasts about ActivateTimeout; handled after the queued calls,
// it waited for a queue that a flood of failing calls keeps from ever
// being empty, and a fence not acknowledged was never sent again. A
// select picks at random among
// ready cases; here each select only notes what is ready (a signal, or
// the call taken from the queue), and the switch handles it in that
// order, so that a simulation whose events coincide replays exactly.
func (q *failoverQueue) run() {
	defer close(q.done)
	var retry <-chan time.Time
	var next *forwarding // a call taken from q.ch, not yet handled
	owed, due := false, false
	for {
		if retry == nil && !due && len(q.demote) > 0 {
			retry = time.After(q.wait.Next())
		}
		select {
		case <-q.owedCh:
			owed = true
		default:
		}
		if next == nil {
			select {
			case f, ok := <-q.ch:
				if !ok {
					return
				}
				next = f
			default:
			}
		}
		select {
		case <-retry:
			retry, due = nil, true
		default:
		}
		switch {
		case owed:
			owed = false
			q.takeOwed()
			q.r.redemote()
		case due:
			due = false
			q.r.redemote()
			if len(q.demote) == 0 {
				q.wait.Reset()
			}
		case next != nil:
			f := next
			next = nil
			q.handle(f)
		default:
			select {
			case f, ok := <-q.ch:
				if !ok {
					return
				}
				next = f
			case <-retry:
				retry, due = nil, true
			case <-q.owedCh:
				owed = true
			}
		}
	}
}

// handle decides for one queued call: ended at once if the router is
// closed.
func (q *failoverQueue) handle(f *forwarding) {
	if q.r.closed.Load() {
		q.r.finish(f)
		return
	}
	q.r.failover(f)
}

// The waits between rounds of unacknowledged demotions: the first step
// and the largest (rfc.Backoff, jittered to half a step below).
const (
	demoteEvery = time.Second
	demoteMax   = 2 * time.Second
)

// demotion is a member the router fenced (set-role false) without an
// acknowledgement, then replaced.
type demotion struct {
	cluster string
	member  netip.AddrPort
}

// demoteParallel bounds the set-role(false) requests of one round of
// redemote in flight at once.
const demoteParallel = 32

// redemote re-sends set-role(false) to every member in q.demote, up to
// demoteParallel at once, so that a round lasts about ActivateTimeout
// however many members do not answer. A member that acknowledges, that is
// no longer listed in its sub-cluster, or that the router believes active
// again, is forgotten. A member that another sub-cluster lists and the
// router believes active there is not sent the demotion (a member has one
// role, whatever the sub-clusters that list it: CallSetRole names none);
// it stays pending until no sub-cluster believes it active. Only a
// sub-cluster that a mount names counts (mountTable.activeElsewhere). Nothing is
// sent once the router is closed. Runs
// on the failover goroutine, which owns q.demote (or in New before it
// starts) and makes every promotion: no promotion runs during a round.
func (r *Router) redemote() {
	if r.closed.Load() {
		return
	}
	todo := r.fo.demote
	acked := make([]bool, len(todo))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(todo), demoteParallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(todo); i = int(next.Add(1) - 1) {
				d := todo[i]
				mt := r.table.Load()
				cs := mt.clusters[d.cluster]
				if cs == nil {
					acked[i] = true
					continue
				}
				idx := slices.Index(cs.members, d.member)
				if idx < 0 || idx == cs.activeIdx() {
					acked[i] = true
					continue
				}
				if mt.activeElsewhere(d.member, d.cluster) {
					continue // held until that sub-cluster replaces it
				}
				if r.setRole(d.member, false) == nil {
					acked[i] = true
					r.log.Info("route: replaced member demoted", "cluster", cs.name, "member", d.member.String())
				}
			}
		}()
	}
	wg.Wait()
	keep := todo[:0]
	for i, d := range todo {
		if !acked[i] {
			keep = append(keep, d)
		}
	}
	clear(todo[len(keep):])
	r.fo.demote = keep
}

// forgetDemotion drops a pending demotion of m in cluster (m is made
// active again). Runs on the failover goroutine.
func (r *Router) forgetDemotion(cluster string, m netip.AddrPort) {
	r.fo.demote = slices.DeleteFunc(r.fo.demote, func(d demotion) bool { return d.cluster == cluster && d.member == m })
}

// rememberDemotion records an unacknowledged demotion of m in cluster,
// once. Runs on the failover goroutine.
func (r *Router) rememberDemotion(cluster string, m netip.AddrPort) {
	d := demotion{cluster, m}
	if !slices.Contains(r.fo.demote, d) {
		r.fo.demote = append(r.fo.demote, d)
	}
}

// failover decides what follows f's failed attempt on member f.idx. A
// call whose overall deadline has passed ends with its attempt's error
// number: nobody waits for it. If the router's view changed since
// (another call's failover), the call goes to the member now believed
// active. Otherwise the member is judged by the router's own evidence:
// the engine holding it dead (ENODEAD, the heartbeat service's verdict),
// or no answer to a ping bounded by ProbeTimeout. A member that answers
// the ping is alive and stays active: the call ends with its error
// number. A dead one is replaced (promote). A decision that kept the
// view (the member answered, or no standby took over) also stands for
// every call whose attempt failed before that decision began, so a burst
// of failed calls costs one decision, not one each.
func (r *Router) failover(f *forwarding) {
	if !time.Now().Before(f.overall) {
		r.finish(f)
		return
	}
	cs := r.lockCurrent(f)
	before := cs.role.Load()
	next := r.decideLocked(cs, f)
	if cs.role.Load() != before {
		r.carryOver(cs)
	}
	cs.promote.Unlock()
	if next < 0 || f.unknown && !f.rc.Idempotent {
		r.finish(f)
		return
	}
	r.try(f, next)
}

// lockCurrent locks the promotions of the sub-cluster state the table
// now publishes for f's sub-cluster and returns it. A table change
// replaces the state, starting from the member the old one believes
// active (apply); a decision made on a replaced state would be lost to
// the new one, which may meanwhile have made another member active. So
// a call whose state was replaced moves to the new one, with its view
// and the index there of the member its attempt failed on (-1 if no
// longer listed): decideLocked then sends it to the member now believed
// active, or decides on the failed member if that is still the one. A
// decision under way when the table replaces its state is carried over
// (carryOver). A sub-cluster the table removed keeps the state the call
// has.
func (r *Router) lockCurrent(f *forwarding) *clusterState {
	for {
		cs := f.cs
		cs.promote.Lock()
		cur := r.table.Load().clusters[cs.name]
		if cur == nil || cur == cs {
			return cs
		}
		cs.promote.Unlock()
		idx := -1
		if f.idx >= 0 {
			idx = slices.Index(cur.members, cs.members[f.idx])
		}
		f.cs, f.idx, f.view = cur, idx, cur.role.Load()
	}
}

// decideLocked returns the member f tries next, -1 for none. Called with
// cs.promote held.
func (r *Router) decideLocked(cs *clusterState, f *forwarding) int {
	view := cs.role.Load()
	if f.noActive {
		return r.activateStandbyLocked(cs, f, view)
	}
	if cur := roleIdx(view); cur != f.idx {
		return cur
	}
	if cs.kept.view == view && !f.failedAt.After(cs.kept.at) {
		return -1 // decided since this attempt failed: the view stands
	}
	start := time.Now()
	if f.at.errno != wire.ENODEAD && r.alive(cs.members[f.idx]) {
		cs.kept.view, cs.kept.at = view, start
		return -1
	}
	next := r.promoteLocked(cs, view, f.at.errno)
	if next < 0 {
		cs.kept.view, cs.kept.at = view, start
	}
	return next
}

// alive pings m, bounded by ProbeTimeout, and reports whether it answered.
func (r *Router) alive(m netip.AddrPort) bool {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ProbeTimeout)
	err := r.ep.Call(ctx, m, rfc.CallPing, nil, nil)
	cancel()
	return err == nil
}

// finish counts the call, notifies the member of a failure, audits it,
// answers it with f.at.errno (and, on success, the reply parameters
// already in the deferral) and gives f back.
//
// A call that is not idempotent and was sent without an answer ends
// ETIMEDOUT, whatever followed: it may have run at f.at.dest.
func (r *Router) finish(f *forwarding) {
	if f.unknown && !f.rc.Idempotent && f.at.errno != wire.OK {
		f.at.errno = wire.ETIMEDOUT
	}
	e := f.at.errno
	end := time.Now()
	if f.cs != nil {
		f.cs.ctr.record(int64(end.Sub(f.start)), e != wire.OK)
		if e != wire.OK {
			r.notice(f, end)
		}
	}
	if r.audit != nil {
		rec := &f.rec
		rec.Start, rec.End = f.start.UnixNano(), end.UnixNano()
		rec.Client, rec.Node, rec.CallID, rec.CallNo = f.from, f.src, f.callID, f.callNo
		rec.Name, rec.Errno = f.rc.Name, e
		rec.Cluster = ""
		if f.cs != nil {
			rec.Cluster = f.cs.name
		}
		rec.Dest, rec.Prev, rec.PrevErr, rec.Tries = f.at.dest, f.at.prev, f.at.prevErr, uint8(f.at.tries)
		r.audit.Submit(rec)
	}
	// The record is queued before the answer goes out: a client that has
	// its answer and then queries the trail finds the record (a query
	// flushes what was queued before it).
	f.d.Reply(e)
	f.d = nil
	f.rc, f.cs = nil, nil
	r.fwds.Put(f)
	r.callEnded()
}

// promoteLocked replaces the active member of view, which failed.
// First it fences that member: CallSetRole(false), bounded by
// ActivateTimeout and sent even if the engine holds it dead, so that a
// member that is alive after all stops serving before another starts.
// Then the next member in table order that the engine does not hold dead
// is told to become active (CallSetRole true) and, if it agrees, becomes
// the active one. It returns the member to try next, -1 if none. Called
// with cs.promote held: promotions of one sub-cluster are serialized.
// A promotion does not wait for the fence to be acknowledged (a dead
// member cannot answer); an unacknowledged fence, and a candidate that
// did not acknowledge its promotion (it may have taken the role), are
// remembered and sent set-role(false) by the failover goroutine until
// acknowledged (redemote).
func (r *Router) promoteLocked(cs *clusterState, view uint64, why wire.Errno) int {
	failed := roleIdx(view)
	fenced := r.setRole(cs.members[failed], false) == nil
	cand, ok := r.activateLocked(cs, view, failed+1, len(cs.members)-1)
	if !ok {
		return cand
	}
	if !fenced {
		r.rememberDemotion(cs.name, cs.members[failed])
	}
	cs.ctr.failovers.Add(1)
	r.log.Warn("route: standby promoted", "cluster", cs.name, "failed", cs.members[failed].String(),
		"reason", why.String(), "fenced", fenced, "active", cs.members[cand].String())
	return cand
}

// activateLocked tells count members of cs, in table order from index
// first (modulo the member count), to become active (CallSetRole true),
// skipping those the engine holds dead, until one agrees; that one
// becomes the active member of view. It returns the member to try next
// and whether it made that one active: (-1, false) if none agreed, the
// member now believed active and false if the view changed meanwhile. A
// member whose answer the router did not hear, or that agreed after the
// view changed, may hold the role: it is demoted later unless it is made
// active meanwhile. Called with cs.promote held.
func (r *Router) activateLocked(cs *clusterState, view uint64, first, count int) (int, bool) {
	n := len(cs.members)
	for j := 0; j < count; j++ {
		cand := (first + j) % n
		if info, ok := r.ep.Peer(cs.members[cand]); ok && info.State == rfc.PeerDead {
			continue
		}
		if r.setRole(cs.members[cand], true) != nil {
			r.rememberDemotion(cs.name, cs.members[cand])
			continue
		}
		if !cs.switchActive(view, cand) {
			if cur := cs.activeIdx(); cur != cand {
				r.rememberDemotion(cs.name, cs.members[cand])
			}
			return cs.activeIdx(), false
		}
		r.forgetDemotion(cs.name, cs.members[cand])
		return cand, true
	}
	return -1, false
}

// activateStandbyLocked decides for f, a call that tried every member
// and found none active: those that answered said ENOTACTIVE (each
// restarted as standby, or was demoted as the router started) and the
// others failed. If the view changed since the call began, the call goes
// to the member now believed active. A member whose attempt timed out
// is pinged first, as in a failover: if it answers it is alive, may be
// the active one, and nothing changes. Otherwise the router activates a
// member, the one it believes active first (skipping those the engine
// holds dead), and demotes the others until they acknowledge. A decision
// that changed nothing stands for the calls whose attempts failed before
// it began. Called with cs.promote held.
func (r *Router) activateStandbyLocked(cs *clusterState, f *forwarding, view uint64) int {
	if view != f.view {
		return roleIdx(view)
	}
	if cs.kept.view == view && !f.failedAt.After(cs.kept.at) {
		return -1
	}
	start := time.Now()
	if f.at.errno == wire.ETIMEDOUT && f.idx >= 0 && r.alive(cs.members[f.idx]) {
		cs.kept.view, cs.kept.at = view, start
		return -1
	}
	cand, ok := r.activateLocked(cs, view, roleIdx(view), len(cs.members))
	switch {
	case ok:
		for i, m := range cs.members {
			if i != cand {
				r.rememberDemotion(cs.name, m)
			}
		}
		r.log.Warn("route: every member standby, one activated", "cluster", cs.name, "active", cs.members[cand].String())
	case cand < 0:
		cs.kept.view, cs.kept.at = view, start
	}
	return cand
}

// setRoleSize is the size of a CallSetRole request's parameters.
const setRoleSize = wire.ParamBoolSize + wire.ParamFixed8Size

// setRole calls CallSetRole(active) on m, bounded by ActivateTimeout,
// under a new role epoch (nextRoleEpoch). The request goes out even to a
// member the engine holds dead. ECONFLICT (the member obeyed a later
// request) is a failure like any other: the request was not obeyed.
func (r *Router) setRole(m netip.AddrPort, active bool) error {
	var ps wire.Params
	var buf [setRoleSize]byte
	ps.Reset(buf[:])
	ps.Bool(active)
	ps.Uint64(r.nextRoleEpoch())
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ActivateTimeout)
	defer cancel()
	return r.ep.Probe(ctx, m, CallSetRole, &ps, nil)
}

// nextRoleEpoch returns the epoch of the next CallSetRole request: above
// every epoch the router has used, and at least the wall clock in Unix
// ns, so that a restarted router (or the router that decided last, among
// several) is above what an earlier run sent. A member obeys no request
// below the highest epoch it has obeyed, so a request the network
// delayed past a later one has no effect.
func (r *Router) nextRoleEpoch() uint64 {
	for {
		last := r.roleEpoch.Load()
		e := max(last+1, uint64(time.Now().UnixNano()))
		if r.roleEpoch.CompareAndSwap(last, e) {
			return e
		}
	}
}

// notice sends the member the failed call went to (or, if the engine
// holds it dead, the first other member it can reach) a one-way
// CallNotice naming the client. Best effort: a notice is sent once and
// may be lost.
func (r *Router) notice(f *forwarding, now time.Time) {
	cs := f.cs
	f.ps.Reset(f.buf)
	f.ps.Uint64(uint64(f.src))
	f.ps.Value(wire.Value{Type: wire.TypeString, Raw: f.from.AppendTo(f.addr[:0])})
	f.ps.Uint64(f.callID)
	f.ps.Uint64(uint64(f.callNo))
	f.ps.String(f.rc.Name)
	f.ps.Uint64(uint64(f.at.errno))
	f.ps.Value(f.path)
	f.ps.Uint64(uint64(now.UnixNano()))
	if f.ps.Err() != wire.OK {
		return
	}
	first := f.at.dest
	if !first.IsValid() {
		first = cs.members[cs.activeIdx()]
	}
	if r.ep.Send(first, CallNotice, &f.ps) == nil {
		r.notices.Add(1)
		return
	}
	for _, m := range cs.members {
		if m != first && r.ep.Send(m, CallNotice, &f.ps) == nil {
			r.notices.Add(1)
			return
		}
	}
}
