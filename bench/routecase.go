package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/wire"
)

// Route table rows.
const (
	RouteRouted = "routed through the router (audit on)"
	RouteDirect = "direct to the active member"
)

// routeCluster is a router, a sub-cluster "c1" of two members (one
// active) mounted at "/c1", all in this process.
type routeCluster struct {
	router *route.Router
	rep    *rfc.Endpoint
	meps   [2]*rfc.Endpoint
	undo
}

func newEndpoint(node uint32) (*rfc.Endpoint, error) {
	cfg := rfc.DefaultConfig()
	cfg.NodeID = node
	cfg.Logger = quiet()
	return rfc.Listen(cfg)
}

func startRouteCluster(valueSize int) (_ *routeCluster, err error) {
	rc := &routeCluster{}
	defer rc.closeOnError(&err)
	table := route.NewMemMounts()
	for i := range rc.meps {
		ep, err := newEndpoint(uint32(10 + i))
		if err != nil {
			return nil, err
		}
		rc.meps[i] = ep
		rc.add(func() { ep.Close() })
		if err := route.NewMember(route.MemberConfig{Active: i == 0}).Register(ep); err != nil {
			return nil, err
		}
	}
	ctx := context.Background()
	if err := route.AddCluster(ctx, table, route.DefaultTablePrefix, "c1", []route.MemberSpec{
		{Addr: rc.meps[0].Addr(), Role: route.RoleActive}, {Addr: rc.meps[1].Addr(), Role: route.RoleStandby}}); err != nil {
		return nil, err
	}
	if err := route.AddMount(ctx, table, route.DefaultTablePrefix, "/c1", "c1"); err != nil {
		return nil, err
	}
	ep, err := newEndpoint(1)
	if err != nil {
		return nil, err
	}
	rc.rep = ep
	rc.add(func() { ep.Close() })
	dir, err := os.MkdirTemp("", "fcbench-audit")
	if err != nil {
		return nil, err
	}
	rc.add(func() { os.RemoveAll(dir) })
	cfg := route.DefaultConfig()
	cfg.AuditDir = dir
	cfg.Logger = quiet()
	r, err := route.New(ep, cfg, table)
	if err != nil {
		return nil, err
	}
	rc.router = r
	rc.add(func() { r.Close() })
	// The value the calls read.
	cli, err := newEndpoint(100)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var ps wire.Params
	ps.Reset(make([]byte, valueSize+256))
	ps.String(routePath)
	ps.Bytes(make([]byte, valueSize))
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := cli.Call(cctx, ep.Addr(), route.CallNSPut, &ps, nil); err != nil {
		return nil, fmt.Errorf("route: put through the router: %v", err)
	}
	return rc, nil
}

const routePath = "/c1/bench"

// routeSys reads the value at routePath with the namespace get call,
// through the router or straight from the active member.
type routeSys struct {
	rc     *routeCluster
	routed bool
}

func (s *routeSys) Name() string {
	if s.routed {
		return RouteRouted
	}
	return RouteDirect
}

func (s *routeSys) Start() error { return nil }
func (s *routeSys) Stop()        {}

func (s *routeSys) Client(callers, size int) (func(int) bool, func(), error) {
	cli, err := newEndpoint(200)
	if err != nil {
		return nil, nil, err
	}
	dst := s.rc.meps[0].Addr()
	if s.routed {
		dst = s.rc.rep.Addr()
	}
	ps := make([]wire.Params, callers)
	reps := make([]rfc.Reply, callers)
	for i := range ps {
		ps[i].Reset(make([]byte, 256))
		ps[i].String(routePath)
	}
	ctx := context.Background()
	call := func(w int) bool {
		if err := cli.Call(ctx, dst, route.CallNSGet, &ps[w], &reps[w]); err != nil {
			return false
		}
		return len(reps[w].Param(0).Bytes()) == size
	}
	return call, func() { cli.Close() }, nil
}

// RouteResult is the route case: call rows, and the audit trail's figures.
type RouteResult struct {
	Calls []CallResult
	// Audit counters after the routed runs (warm-ups included).
	Written, Dropped uint64
	// WriterRecordsPerSec is node/route's BenchmarkAuditWriter: the audit
	// writer alone, records queued as fast as it takes them. 0 with
	// WriterErr set when it could not run.
	WriterRecordsPerSec float64
	WriterErr           string
}

// RunRoute measures routed against direct namespace gets (64-byte value),
// sequential and 32 callers, then runs the audit writer benchmark of
// node/route with `go test` from the module root.
func RunRoute(o Options, progress func(string)) (RouteResult, error) {
	var res RouteResult
	rc, err := startRouteCluster(64)
	if err != nil {
		return res, err
	}
	defer rc.close()
	rs, err := RunCalls([]System{&routeSys{rc: rc, routed: true}, &routeSys{rc: rc}}, LossShapes, o, progress)
	if err != nil {
		return res, err
	}
	res.Calls = rs
	rc.router.Flush(5 * time.Second)
	st := rc.router.AuditStats()
	res.Written, res.Dropped = st.Written, st.Dropped
	res.WriterRecordsPerSec, err = auditWriterBench()
	if err != nil {
		res.WriterErr = err.Error()
	}
	return res, nil
}

var recordsRe = regexp.MustCompile(`([0-9.e+]+) records/s`)

func auditWriterBench() (float64, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkAuditWriter$", "-benchtime", "300000x", "-count", "3", "./node/route")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go test -bench AuditWriter ./node/route: %v: %s", err, lastLine(string(out)))
	}
	var vs []float64
	for _, m := range recordsRe.FindAllStringSubmatch(string(out), -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("no records/s in the benchmark output")
	}
	sortFloats(vs)
	return medianF(vs), nil
}

// WriteRouteMarkdown writes the route tables.
func WriteRouteMarkdown(w io.Writer, r RouteResult) {
	WriteCallsTable(w, r.Calls, RouteRouted)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Audit records written during the routed runs (warm-ups included): %d, dropped: %d.\n\n", r.Written, r.Dropped)
	if r.WriterErr != "" {
		fmt.Fprintf(w, "Audit writer alone: not measured (%s).\n", r.WriterErr)
	} else {
		fmt.Fprintf(w, "Audit writer alone (`go test -run '^$' -bench '^BenchmarkAuditWriter$' -benchtime 300000x -count 3 ./node/route`, median of 3): %.0f records/s.\n", r.WriterRecordsPerSec)
	}
}
