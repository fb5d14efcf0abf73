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
// member restarts as standby). Invariants: at most one audit record per
// call, exactly one for a call its client saw succeed; every execution
// of a call at a member is at its audit record's destination; once the
// faults stop and the router settled, no sub-cluster has two active
// members, and an active member is the one the router routes to.
func TestSimRouter(t *testing.T) { runSeeds(t, "Router", runRouter) }

// callSimPut is the routed call of the scenario: a str path naming the
// call, fixed width so that one path is never the prefix of another.
const callSimPut = wire.CallRouteBase + 0x1F

var (
	simPutSchema = wire.Schema{wire.TypeString}
	simPathRE    = regexp.MustCompile(`/c[12]/x[0-9]{7}`)
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
	}
}

func runRouter(t *testing.T, seed uint64, chk *checker) {
	rnd := simnet.NewRand(seed)
	w := &rtWorld{t: t, dir: "/sim", fs: audit.NewMemFS(), chk: chk, stop: make(chan struct{}), mounts: route.NewMemMounts()}
	w.mu.execs = map[string][]int{}
	w.mu.ok = map[string]bool{}
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
	for i := rtClient0; i <= rtClient1; i++ {
		w.wg.Add(1)
		go w.client(i, rnd.Fork(uint64(i)))
	}
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
		w.router = nil
	}
	w.members[i] = nil
}

// client sends routed calls until the world stops, each with a path of
// its own, and records those that succeeded.
func (w *rtWorld) client(i int, rnd *simnet.Rand) {
	defer w.wg.Done()
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
		if err == nil {
			w.mu.Lock()
			w.mu.ok[path] = true
			w.mu.Unlock()
		}
	}
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

// check applies the invariants once the world is quiet.
func (w *rtWorld) check() {
	if !w.router.Flush(5 * time.Second) {
		w.chk.failf("audit flush did not complete")
	}
	aud := w.audits()
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, es := range aud {
		if len(es) > 1 {
			w.chk.failf("call %s has %d audit records: %q and %q", p, len(es), es[0].Line, es[1].Line)
		}
		for _, m := range w.mu.execs[p] {
			if w.addrs[m] != es[0].Dest {
				w.chk.failf("call %s executed at %v, its audit record names %v: %q", p, w.addrs[m], es[0].Dest, es[0].Line)
			}
		}
	}
	for p := range w.mu.ok {
		if len(aud[p]) == 0 {
			w.chk.failf("call %s succeeded and has no audit record", p)
		}
	}
	for p, ms := range w.mu.execs {
		if len(aud[p]) == 0 {
			w.chk.failf("call %s executed at %d members and has no audit record", p, len(ms))
		}
	}
	sum := fmt.Sprintf("calls-ok=%d audited=%d executed=%d", len(w.mu.ok), len(aud), len(w.mu.execs))
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
