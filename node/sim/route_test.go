package sim

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"fastcall/node/route"
	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestSimRouter is the router scenario: a router with a mount table (a
// route.MemMounts outside the simulated network; audit files in an
// audit.MemFS, which outlives the router's crashes as a disk does) routing /c1 and /c2 to two sub-clusters of two members each, and
// two clients sending routed calls, each with a path of its own, under
// the fault schedule (the router and the members crash and restart; a
// member restarts as standby). Invariants:
//   - every parked caller returns by its deadline plus one engine tick
//     (checker.timed), and the router answers every call it accepted:
//     once the clients stop, it holds no request unanswered;
//   - one audit record per accepted call: each call the router finished
//     (counted by every router run) has its record, none is dropped or
//     written twice, and a call whose client saw a success, or an error
//     number only the router answers, has exactly one, with that
//     outcome;
//   - the record matches what the members executed: a call is executed
//     at most once, at its record's destination, and a record whose
//     outcome is OK names the member that executed it;
//   - once the faults stop and the router settled, no sub-cluster has
//     two active members, and an active member is the one the router
//     routes to.
func TestSimRouter(t *testing.T) { runSeeds(t, "Router", runRouter) }

// callSimPut is the routed call of the scenario: a str path naming the
// call, fixed width so that one path is never the prefix of another.
const callSimPut = wire.CallRouteBase + 0x1F

var (
	simPutSchema = wire.Schema{wire.TypeString}
	simPathRE    = regexp.MustCompile(`/c[12]/x[0-9]{7}`)
)

// The router scenario's audit files: small, so that they rotate during a
// run, and never deleted (more than a run's files and router restarts).
const (
	rtAuditRotate = 16 << 10
	rtAuditKeep   = 1 << 16
)

// Roles of the router scenario's nodes, by index.
const (
	rtRouter = iota
	rtC1a
	rtC1b
	rtC2a
	rtC2b
	rtClient0
	rtClient1
	rtNodes
)

type rtWorld struct {
	t       *testing.T
	dir     string
	fs      *audit.MemFS
	net     *simnet.Network
	chk     *checker
	cfg     rfc.Config
	mounts  *route.MemMounts
	addrs   []netip.AddrPort
	eps     []*rfc.Endpoint
	router  *route.Router
	members [rtNodes]*route.Member
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      struct {
		sync.Mutex
		execs map[string][]int // path -> the members that executed it
		ok    map[string]bool  // path -> its client saw it succeed
		// errs holds, by path, the error numbers a client can only have
		// from the router's answer (not its own engine's).
		errs     map[string]wire.Errno
		finished uint64 // calls finished by the router runs that ended
		dropped  uint64 // audit records they dropped
	}
}

func runRouter(t *testing.T, seed uint64, chk *checker) {
	rnd := simnet.NewRand(seed)
	w := &rtWorld{t: t, dir: "/sim", fs: audit.NewMemFS(), chk: chk, stop: make(chan struct{}), mounts: route.NewMemMounts()}
	w.mu.execs = map[string][]int{}
	w.mu.ok = map[string]bool{}
	w.mu.errs = map[string]wire.Errno{}
	w.net = simnet.New(seed, calm(), chk.tr)
	defer w.net.Close()
	w.cfg, w.addrs = crashNodes(rtNodes, 4, 7400)
	ctx := context.Background()
	for c, ms := range [][2]int{{rtC1a, rtC1b}, {rtC2a, rtC2b}} {
		name := fmt.Sprintf("c%d", c+1)
		spec := []route.MemberSpec{{Addr: w.addrs[ms[0]], Role: route.RoleActive}, {Addr: w.addrs[ms[1]], Role: route.RoleStandby}}
		if err := route.AddCluster(ctx, w.mounts, route.DefaultTablePrefix, name, spec); err != nil {
			t.Fatal(err)
		}
		if err := route.AddMount(ctx, w.mounts, route.DefaultTablePrefix, "/"+name, name); err != nil {
			t.Fatal(err)
		}
	}
	w.eps = make([]*rfc.Endpoint, rtNodes)
	chk.tr.Add("world", noAddr, noAddr, fmt.Sprintf("seed=%d", seed))
	for i := 0; i < rtNodes; i++ {
		w.start(i, i == rtC1a || i == rtC2a)
	}
	startClients(&w.wg, rnd, rtClient0, rtClient1, w.client)
	runAnyFaults(w.net, chk, rnd.Fork(1), w.addrs[:rtClient0], w.crash, func(i int) { w.start(i, false) })
	// Calls go on for a while on the calm network, so that the router
	// meets every member it must fence or promote.
	time.Sleep(*flagQuiet / 2)
	close(w.stop)
	w.wg.Wait()
	time.Sleep(*flagQuiet / 2)
	w.check()
	for i := range w.eps {
		w.crash(i)
	}
}

// start starts node i's endpoint and its role; a member starts active
// only at the very first start, as the table lists it.
func (w *rtWorld) start(i int, active bool) {
	ep := openNode(w.t, w.net, w.cfg, uint32(i+1), w.addrs[i])
	var err error
	switch i {
	case rtRouter:
		rc := route.DefaultConfig()
		rc.Calls = append(rc.Calls, route.RoutedCall{No: callSimPut, Name: "sim-put", Schema: simPutSchema})
		rc.AuditDir = filepath.Join(w.dir, "audit")
		rc.AuditFS = w.fs
		// Files rotate during a run, and every one is kept (a restart
		// starts a new file too): the check reads every record.
		rc.AuditRotateBytes = rtAuditRotate
		rc.AuditKeep = rtAuditKeep
		rc.Logger = quietLogger
		if w.router, err = route.New(ep, rc, w.mounts); err != nil {
			w.t.Fatal(err)
		}
	case rtC1a, rtC1b, rtC2a, rtC2b:
		mc := route.DefaultMemberConfig()
		mc.Active = active
		m := route.NewMember(mc)
		err = m.Register(ep)
		if err == nil {
			err = ep.Register(callSimPut+route.RoutedOffset, "sim-put-fwd", route.ForwardedSchema(simPutSchema), 0,
				func(req *rfc.Request, reply *wire.Params) wire.Errno {
					if !m.Active() {
						return wire.ENOTACTIVE
					}
					path := string(req.Param(route.ContextParams).Bytes())
					w.chk.tr.Add("exec", w.addrs[i], noAddr, fmt.Sprintf("path=%s callid=%d", path, req.Param(2).Uint64()))
					w.mu.Lock()
					w.mu.execs[path] = append(w.mu.execs[path], i)
					w.mu.Unlock()
					return wire.OK
				})
		}
		if err != nil {
			w.t.Fatal(err)
		}
		w.members[i] = m
	}
	w.eps[i] = startNode(w.t, ep)
}

// crash stops node i: its endpoint first, as a process killed, then what
// ran on it.
func (w *rtWorld) crash(i int) {
	if !killNode(&w.eps[i]) {
		return
	}
	if i == rtRouter {
		w.router.Close()
		fin, drop := routerFinished(w.router)
		w.mu.Lock()
		w.mu.finished += fin
		w.mu.dropped += drop
		w.mu.Unlock()
		w.router = nil
	}
	w.members[i] = nil
}

// client sends routed calls until the world stops, each with a path of
// its own, and records those that succeeded.
func (w *rtWorld) client(i int, rnd *simnet.Rand) {
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			return
		case <-time.After(rnd.Dur(50 * time.Millisecond)):
		}
		path := fmt.Sprintf("/c%d/x%07d", 1+rnd.Below(2), i*1000000+n)
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.String(path)
		var rep rfc.Reply
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond+rnd.Dur(2*time.Second))
		err := w.chk.timed(ctx, fmt.Sprintf("routed call %s from %v", path, w.addrs[i]), engineTick(w.cfg), func() error {
			return w.eps[i].Call(ctx, w.addrs[rtRouter], callSimPut, &ps, &rep)
		})
		cancel()
		w.chk.tr.Add("call", w.addrs[i], w.addrs[rtRouter], fmt.Sprintf("path=%s err=%v", path, err))
		w.mu.Lock()
		switch e := wire.AsErrno(err); {
		case e == wire.OK:
			w.mu.ok[path] = true
		case routerOnly(e):
			w.mu.errs[path] = e
		}
		w.mu.Unlock()
	}
}

// routerOnly reports whether a routed call's error number can only come
// from the router's answer: the caller's own engine ends a call with
// ETIMEDOUT, ENODEAD, EBUSY, ECANCELED or ECLOSED, and the router's
// engine answers without accepting the call ECLOSED after the router
// closed, EBUSY when it has no room, and ESTALE to a request that names
// an earlier run of the router or falls below its duplicate cache's
// floor.
func routerOnly(e wire.Errno) bool {
	switch e {
	case wire.OK, wire.ETIMEDOUT, wire.ENODEAD, wire.EBUSY, wire.ECANCELED, wire.ECLOSED, wire.ESTALE:
		return false
	}
	return true
}

// routerFinished returns the routed calls r finished (each one audited)
// and the audit records it dropped.
func routerFinished(r *route.Router) (finished, dropped uint64) {
	for _, c := range r.Counters() {
		finished += c.Calls
	}
	return finished, r.AuditStats().Dropped
}

// audits reads every audit record of the scenario's call, by path.
func (w *rtWorld) audits() map[string][]audit.Entry {
	out := map[string][]audit.Entry{}
	dir := filepath.Join(w.dir, "audit")
	seqs, err := audit.Files(w.fs, dir)
	if err != nil {
		w.chk.failf("audit files: %v", err)
	}
	for _, seq := range seqs {
		name := filepath.Join(dir, audit.FileName(seq))
		f, err := w.fs.Open(name)
		if err != nil {
			w.chk.failf("audit file %s: %v", name, err)
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			e, err := audit.ParseLine(sc.Text())
			if err != nil {
				w.chk.failf("audit line %q: %v", sc.Text(), err)
				continue
			}
			if e.CallNo != callSimPut {
				continue
			}
			p := simPathRE.FindString(e.Params)
			if p == "" {
				w.chk.failf("audit record without a path: %q", e.Line)
				continue
			}
			out[p] = append(out[p], e)
		}
		f.Close()
	}
	return out
}

// drainBound bounds the wait, at the end of a run, for the requests the
// router still holds: long past any call's deadline.
const drainBound = 10 * time.Second

// check applies the invariants once the world is quiet.
func (w *rtWorld) check() {
	// The clients stopped long ago: a request the router still holds was
	// accepted and never answered.
	start := time.Now()
	w.eps[rtRouter].Drain(drainBound)
	if el := time.Since(start); el >= drainBound {
		w.chk.failf("the router still holds requests %v after the clients stopped", el)
	}
	if !w.router.Flush(5 * time.Second) {
		w.chk.failf("audit flush did not complete")
	}
	aud := w.audits()
	fin, drop := routerFinished(w.router)
	w.mu.Lock()
	defer w.mu.Unlock()
	fin += w.mu.finished
	drop += w.mu.dropped
	records := 0
	for p, es := range aud {
		records += len(es)
		if len(es) > 1 {
			w.chk.failf("call %s has %d audit records: %q and %q", p, len(es), es[0].Line, es[1].Line)
		}
		ex := w.mu.execs[p]
		if len(ex) > 1 {
			w.chk.failf("call %s executed %d times (members %v): %q", p, len(ex), ex, es[0].Line)
		}
		for _, m := range ex {
			if w.addrs[m] != es[0].Dest {
				w.chk.failf("call %s executed at %v, its audit record names %v: %q", p, w.addrs[m], es[0].Dest, es[0].Line)
			}
		}
		if es[0].Errno == wire.OK && len(ex) == 0 {
			w.chk.failf("call %s audited OK and executed nowhere: %q", p, es[0].Line)
		}
	}
	if uint64(records) != fin || drop != 0 {
		w.chk.failf("the router runs finished %d calls and dropped %d audit records; the files hold %d records", fin, drop, records)
	}
	for p := range w.mu.ok {
		if len(aud[p]) == 0 {
			w.chk.failf("call %s succeeded and has no audit record", p)
		} else if e := aud[p][0].Errno; e != wire.OK {
			w.chk.failf("call %s succeeded and is audited %v: %q", p, e, aud[p][0].Line)
		}
	}
	for p, e := range w.mu.errs {
		if len(aud[p]) == 0 {
			w.chk.failf("call %s answered %v by the router has no audit record", p, e)
		} else if a := aud[p][0].Errno; a != e {
			w.chk.failf("call %s answered %v by the router is audited %v: %q", p, e, a, aud[p][0].Line)
		}
	}
	for p, ms := range w.mu.execs {
		if len(aud[p]) == 0 {
			w.chk.failf("call %s executed at %d members and has no audit record", p, len(ms))
		}
	}
	sum := fmt.Sprintf("calls-ok=%d router-errors=%d audited=%d executed=%d finished=%d", len(w.mu.ok), len(w.mu.errs), len(aud), len(w.mu.execs), fin)
	w.chk.tr.Add("check", noAddr, noAddr, sum)
	w.t.Logf("router: %s", sum)
	for c, ms := range [][2]int{{rtC1a, rtC1b}, {rtC2a, rtC2b}} {
		res, err := w.router.Resolve(fmt.Sprintf("/c%d/x", c+1))
		if err != nil {
			w.chk.failf("resolve /c%d: %v", c+1, err)
			continue
		}
		var active []netip.AddrPort
		for _, m := range ms {
			if w.members[m].Active() {
				active = append(active, w.addrs[m])
			}
		}
		if len(active) > 1 {
			w.chk.failf("sub-cluster c%d has %d active members %v; the router routes to %v", c+1, len(active), active, res.Active)
		}
		if len(active) == 1 && active[0] != res.Active {
			w.chk.failf("sub-cluster c%d: %v is active, the router routes to %v", c+1, active[0], res.Active)
		}
	}
}
