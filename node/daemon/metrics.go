package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/wire"

	"golang.org/x/net/netutil"
)

// Metrics: with metrics_addr set, the node serves its counters over HTTP
// at /metrics in the Prometheus text exposition format (version 0.0.4),
// built from the engine's and the roles' own counters at each scrape.
// docs/RFCD.md lists the metric names. Nothing is added to the call path:
// a scrape reads the same atomic counters as the stats calls.

// metricsPath is the URL path of the exposition.
const metricsPath = "/metrics"

// metricsContentType is the exposition's media type.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// MetricsListenAddr turns a metrics_addr value into a TCP listen address.
// A bare port ("9100") or a port without a host (":9100") means the
// loopback address 127.0.0.1: the counters describe the node's traffic
// and are not published beyond the machine unless an address says so
// ("0.0.0.0:9100", "[::]:9100"). The host must be an IP address.
func MetricsListenAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	port := s
	if strings.HasPrefix(s, ":") {
		port = s[1:]
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil && !strings.ContainsAny(port, "+-") {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(n)).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", errors.New("want PORT, :PORT or IP:PORT")
	}
	return ap.String(), nil
}

// Bounds of the metrics server. Every connection it holds is a file
// descriptor of the node's process, the one that also holds the center's
// and the router's files: at most MetricsMaxConns are accepted at once
// (more wait in the kernel's listen queue, which costs the process
// nothing), and one that is idle between requests is closed after
// metricsIdle, so that a client cannot keep the slots for good.
const (
	MetricsMaxConns = 16
	metricsIdle     = 5 * time.Second
)

// metricsServer is the HTTP server of /metrics. Its one goroutine (the
// server's accept loop) starts in startMetrics and ends in close.
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// startMetrics listens on addr (a MetricsListenAddr result) and serves n's
// metrics.
func (n *Node) startMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return bad("metrics_addr", err.Error())
	}
	mux := http.NewServeMux()
	mux.HandleFunc(metricsPath, n.serveMetrics)
	m := &metricsServer{ln: ln, done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second,
			IdleTimeout: metricsIdle, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}}
	go func() {
		defer close(m.done)
		_ = m.srv.Serve(netutil.LimitListener(ln, MetricsMaxConns))
	}()
	n.metrics = m
	return nil
}

// MetricsAddr returns the address /metrics is served on, or an invalid
// AddrPort when metrics are off.
func (n *Node) MetricsAddr() netip.AddrPort {
	if n.metrics == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(n.metrics.ln.Addr().String())
	return ap
}

// close stops the server and waits for its goroutine.
func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m.srv.Shutdown(ctx) != nil {
		m.srv.Close()
	}
	<-m.done
}

// expoPool recycles exposition buffers between scrapes.
var expoPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (n *Node) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b := expoPool.Get().(*bytes.Buffer)
	b.Reset()
	defer expoPool.Put(b)
	n.WriteMetrics(b)
	w.Header().Set("Content-Type", metricsContentType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method == http.MethodGet {
		_, _ = w.Write(b.Bytes())
	}
}

// expo writes the text exposition format: one HELP and one TYPE line per
// family, then its samples, families never interleaved.
type expo struct {
	b *bytes.Buffer
}

// family starts a metric family.
func (e expo) family(name, typ, help string) {
	e.b.WriteString("# HELP ")
	e.b.WriteString(name)
	e.b.WriteByte(' ')
	for i := 0; i < len(help); i++ { // HELP escapes backslash and newline
		switch help[i] {
		case '\\':
			e.b.WriteString(`\\`)
		case '\n':
			e.b.WriteString(`\n`)
		default:
			e.b.WriteByte(help[i])
		}
	}
	e.b.WriteString("\n# TYPE ")
	e.b.WriteString(name)
	e.b.WriteByte(' ')
	e.b.WriteString(typ)
	e.b.WriteByte('\n')
}

// sample writes one sample; labels are name, value pairs.
func (e expo) sample(name string, v float64, labels ...string) {
	e.b.WriteString(name)
	if len(labels) > 0 {
		e.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b.WriteByte(',')
			}
			e.b.WriteString(labels[i])
			e.b.WriteString(`="`)
			writeLabelValue(e.b, labels[i+1])
			e.b.WriteByte('"')
		}
		e.b.WriteByte('}')
	}
	e.b.WriteByte(' ')
	e.b.WriteString(formatValue(v))
	e.b.WriteByte('\n')
}

// perCall writes the counter family name with one sample per call number
// of cs, the counter v picks, labelled with the call number and its name.
func (e expo) perCall(name, help string, cs []rfc.CallCounters, v func(c *rfc.CallCounters) uint64) {
	e.family(name, "counter", help)
	for i := range cs {
		c := &cs[i]
		e.sample(name, float64(v(c)), "call", callLabel(c.CallNo), "name", c.Name)
	}
}

// one writes a family of a single unlabelled sample.
func (e expo) one(name, typ, help string, v float64) {
	e.family(name, typ, help)
	e.sample(name, v)
}

func writeLabelValue(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(s[i])
		}
	}
}

// formatValue writes whole numbers below 2^53 as integers, the rest as
// shortest floats.
func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// callLabel is the call label: the number in hex, as rfcctl prints it.
func callLabel(no uint16) string {
	const hex = "0123456789abcdef"
	return string([]byte{'0', 'x', hex[no>>12], hex[no>>8&0xf], hex[no>>4&0xf], hex[no&0xf]})
}

// field is one counter or gauge of a role's statistics snapshot.
type field[T any] struct {
	name, typ, help string
	get             func(*T) float64
}

func writeFields[T any](e expo, st *T, fs []field[T]) {
	for _, f := range fs {
		e.one(f.name, f.typ, f.help, f.get(st))
	}
}

// WriteMetrics writes the node's metrics in the text exposition format.
func (n *Node) WriteMetrics(b *bytes.Buffer) {
	e := expo{b}
	writeEngineMetrics(e, n.Ep)
	if n.HB != nil {
		writeHeartbeatMetrics(e, n.HB)
	}
	if n.Master != nil {
		st := n.Master.Stats()
		writeFields(e, &st, masterFields)
	}
	if n.Worker != nil {
		st := n.Worker.Stats()
		writeFields(e, &st, workerFields)
		e.one("fastcall_worker_tasks_running", "gauge", "Tasks running on this worker.", float64(n.Worker.Running()))
	}
	if n.Center != nil {
		st := n.Center.Stats()
		writeFields(e, &st, centerFields)
	}
	if n.Agent != nil {
		e.one("fastcall_registry_agent_map_errors_total", "counter", "Changes the agent failed to write into its shared-memory map.", float64(n.Agent.MapErrors()))
	}
	if n.Disp != nil {
		st := n.Disp.Stats()
		writeFields(e, &st, dispatchFields)
	}
	if n.Router != nil {
		writeRouterMetrics(e, n)
	}
}

// writeEngineMetrics writes the call engine's counters.
func writeEngineMetrics(e expo, ep *rfc.Endpoint) {
	st := ep.Stats()
	e.one("fastcall_incarnation", "gauge", "The node's current incarnation number.", float64(st.Incarnation))
	e.one("fastcall_received_datagrams_total", "counter", "Datagrams read from the socket.", float64(st.Rx))
	e.one("fastcall_sent_datagrams_total", "counter", "Datagrams written to the socket.", float64(st.Tx))
	e.one("fastcall_send_errors_total", "counter", "Datagrams the socket refused to send.", float64(st.SendErrors))
	e.one("fastcall_pending_calls", "gauge", "Calls of this node in flight (pending table slots in use).", float64(st.Pending))
	e.one("fastcall_dup_cache_entries", "gauge", "Occupied entries of the duplicate-request cache.", float64(st.DupEntries))
	e.one("fastcall_peers", "gauge", "Peers in the peer table.", float64(st.Peers))
	e.one("fastcall_peer_deaths_total", "counter", "Peers declared dead.", float64(st.PeerDeaths))
	e.one("fastcall_peer_suspects_total", "counter", "Peers marked suspect after consecutive timeouts.", float64(st.PeerSuspect))

	e.family("fastcall_drops_total", "counter", "Datagrams dropped or requests refused, by reason (docs/PROTOCOL.md, Decoding order).")
	for _, d := range ep.Drops() {
		e.sample("fastcall_drops_total", float64(d.Count), "reason", d.Reason)
	}

	// Per call number: served (callee) and called (caller) sides.
	e.perCall("fastcall_calls_served_total", "Requests whose handler ran, by call number.", st.Served,
		func(c *rfc.CallCounters) uint64 { return c.Calls })
	e.perCall("fastcall_calls_made_total", "Calls this node made, by call number.", st.Called,
		func(c *rfc.CallCounters) uint64 { return c.Calls })
	// The two sides of a call number's counters, as the label "side" names
	// them.
	sides := [...]struct {
		name string
		cs   []rfc.CallCounters
	}{{"served", st.Served}, {"called", st.Called}}
	e.family("fastcall_call_errors_total", "counter", "Calls that ended with an error number, by side, call number and error number (EUSER counts every handler-defined number).")
	for _, side := range sides {
		for _, c := range side.cs {
			errs := make([]wire.Errno, 0, len(c.Errors))
			for en := range c.Errors {
				errs = append(errs, en)
			}
			slices.Sort(errs)
			for _, en := range errs {
				e.sample("fastcall_call_errors_total", float64(c.Errors[en]), "side", side.name, "call", callLabel(c.CallNo),
					"name", c.Name, "errno", en.String())
			}
		}
	}
	e.perCall("fastcall_retransmissions_total", "Requests this node sent again, by call number.", st.Called,
		func(c *rfc.CallCounters) uint64 { return c.Retrans })
	e.perCall("fastcall_duplicates_total", "Duplicate requests absorbed or answered from the cache, by call number.", st.Served,
		func(c *rfc.CallCounters) uint64 { return c.Dups })
	const lat = "fastcall_call_duration_seconds"
	e.family(lat, "histogram", "Handler time (side served) or round trip (side called), by call number.")
	var le [rfc.LatencyBuckets]string
	for i := range le {
		le[i] = formatValue(float64(rfc.LatencyBoundUs(i)) / 1e6)
	}
	for _, side := range sides {
		for _, c := range side.cs {
			call := callLabel(c.CallNo)
			l := &c.Latency
			for i := range l.Counts {
				e.sample(lat+"_bucket", float64(l.Counts[i]), "side", side.name, "call", call, "name", c.Name, "le", le[i])
			}
			e.sample(lat+"_bucket", float64(l.Count), "side", side.name, "call", call, "name", c.Name, "le", "+Inf")
			e.sample(lat+"_sum", float64(l.SumNs)/1e9, "side", side.name, "call", call, "name", c.Name)
			e.sample(lat+"_count", float64(l.Count), "side", side.name, "call", call, "name", c.Name)
		}
	}
}

// writeHeartbeatMetrics writes the member states and the liveness
// counters.
func writeHeartbeatMetrics(e expo, s *heartbeat.Service) {
	ms := s.Members()
	states := []heartbeat.State{heartbeat.StateAlive, heartbeat.StateSuspect, heartbeat.StateDead}
	e.family("fastcall_heartbeat_member_state", "gauge", "1 for the state this node believes each member is in, 0 for the others.")
	for _, m := range ms {
		node := strconv.FormatUint(uint64(m.Node), 10)
		for _, st := range states {
			v := 0.0
			if m.State == st {
				v = 1
			}
			e.sample("fastcall_heartbeat_member_state", v, "member", m.Addr.String(), "node", node, "state", st.String())
		}
	}
	e.family("fastcall_heartbeat_members", "gauge", "Members by state.")
	for _, st := range states {
		k := 0
		for _, m := range ms {
			if m.State == st {
				k++
			}
		}
		e.sample("fastcall_heartbeat_members", float64(k), "state", st.String())
	}
	hs := s.Stats()
	writeFields(e, &hs, heartbeatFields)
}

func writeRouterMetrics(e expo, n *Node) {
	cs := n.Router.Counters()
	for _, f := range []struct {
		name, help string
		get        func(c *routeCounters) uint64
	}{
		{"fastcall_route_calls_total", "Routed calls resolved to each sub-cluster.", func(c *routeCounters) uint64 { return c.Calls }},
		{"fastcall_route_errors_total", "Routed calls to each sub-cluster that ended with an error number.", func(c *routeCounters) uint64 { return c.Errors }},
		{"fastcall_route_failovers_total", "Standbys promoted in each sub-cluster.", func(c *routeCounters) uint64 { return c.Failovers }},
	} {
		e.family(f.name, "counter", f.help)
		for i := range cs {
			e.sample(f.name, float64(f.get(&cs[i])), "cluster", cs[i].Name)
		}
	}
	as := n.Router.AuditStats()
	writeFields(e, &as, auditFields)
	e.one("fastcall_route_notices_sent_total", "counter", "Failure notices sent to members.", float64(n.Router.NoticesSent()))
}
