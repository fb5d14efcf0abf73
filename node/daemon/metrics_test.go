package daemon

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

func TestMetricsListenAddr(t *testing.T) {
	cases := []struct{ in, want string }{
		{"9100", "127.0.0.1:9100"},
		{":9100", "127.0.0.1:9100"},
		{"0", "127.0.0.1:0"},
		{"127.0.0.2:80", "127.0.0.2:80"},
		{"0.0.0.0:9100", "0.0.0.0:9100"},
		{"[::1]:9100", "[::1]:9100"},
		{"", ""},
		{"localhost:9100", ""},
		{"70000", ""},
		{"-1", ""},
		{"+80", ""},
	}
	for _, tc := range cases {
		got, err := MetricsListenAddr(tc.in)
		if (err == nil) != (tc.want != "") || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	c := Default()
	c.Insecure = true
	c.Addr = "127.0.0.1:0"
	c.MetricsAddr = "nowhere:1"
	if _, err := Start(c, rfctest.Quiet); err == nil || err.(*rfc.ConfigError).Field != "metrics_addr" {
		t.Fatalf("bad metrics_addr: %v", err)
	}
}

// TestCheckExpositionRejects keeps the checker strict: each broken
// exposition is refused.
func TestCheckExpositionRejects(t *testing.T) {
	const good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n" +
		"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n"
	if n, err := CheckExposition([]byte(good)); err != nil || n != 5 {
		t.Fatalf("good exposition: %d, %v", n, err)
	}
	bad := map[string]string{
		"no newline at end":      "# TYPE g gauge\ng 1",
		"no TYPE":                "g 1\n",
		"bad name":               "# TYPE 1g gauge\n1g 1\n",
		"counter name":           "# TYPE c counter\nc 1\n",
		"bad value":              "# TYPE g gauge\ng one\n",
		"unquoted label":         "# TYPE g gauge\ng{a=1} 1\n",
		"bad escape":             "# TYPE g gauge\ng{a=\"\\t\"} 1\n",
		"repeated label":         "# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n",
		"reserved label":         "# TYPE g gauge\ng{__a=\"1\"} 1\n",
		"repeated series":        "# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n",
		"split family":           "# TYPE g gauge\ng 1\n# TYPE k gauge\nk 1\ng{a=\"1\"} 2\n",
		"second TYPE":            "# TYPE g gauge\n# TYPE g gauge\ng 1\n",
		"other comment":          "# hello\n",
		"empty line":             "# TYPE g gauge\n\ng 1\n",
		"negative counter":       "# TYPE c_total counter\nc_total -1\n",
		"buckets not cumulative": "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"le not increasing":      "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"no +Inf":                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"+Inf != count":          "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
		"no sum":                 "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
		"bucket without le":      "# TYPE h histogram\nh_bucket 2\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
	}
	for name, text := range bad {
		if _, err := CheckExposition([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMetricsScrape runs a node with the center, router, dispatcher and
// master roles (its heartbeat watching a second node), makes calls, and
// scrapes /metrics: every line must parse strictly, and each part of the
// node must be there.
func TestMetricsScrape(t *testing.T) {
	quiet := rfctest.Quiet
	other := Default()
	other.Insecure = true
	other.Addr = "127.0.0.1:0"
	other.Roles = []string{RoleCenter}
	other.Center.DataDir = filepath.Join(t.TempDir(), "center")
	other.Center.Fsync = "never"
	on, err := Start(other, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer on.Stop()
	if on.MetricsAddr().IsValid() {
		t.Fatal("metrics on without metrics_addr")
	}

	c := Default()
	c.Insecure = true
	c.Addr = "127.0.0.1:0"
	c.Node = 9
	c.Roles = []string{RoleMaster, RoleRouter, RoleDisp}
	c.Heartbeat.Members = []string{on.Ep.Addr().String()}
	c.Heartbeat.Interval = Duration{50 * time.Millisecond}
	c.Registry.Centers = []string{on.Ep.Addr().String()}
	c.Router.AuditDir = t.TempDir()
	c.MetricsAddr = "127.0.0.1:0"
	n, err := Start(c, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if !strings.Contains(n.String(), " metrics 127.0.0.1:") {
		t.Fatalf("start line %q lacks the metrics address", n.String())
	}

	// add is idempotent: a retransmission runs it again. The client waits
	// 5 s before one, so that each call runs once and the counts below
	// are exact on a loaded machine too.
	cli := rfctest.Listen(t, 0, func(c *rfc.Config) {
		c.InitialRTO, c.MinRTO, c.MaxRTO = 5*time.Second, 5*time.Second, 5*time.Second
	})
	ctx := rfctest.Context(t, 20*time.Second)
	var p wire.Params
	p.Reset(make([]byte, 64))
	p.Int64(1)
	p.Int64(2)
	for i := 0; i < 5; i++ {
		if err := cli.Call(ctx, n.Ep.Addr(), builtin.CallAdd, &p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli.Call(ctx, n.Ep.Addr(), builtin.CallFault, nil, nil); wire.AsErrno(err) != wire.EFAULT {
		t.Fatalf("fault: %v, want EFAULT", err)
	}
	_ = cli.Call(ctx, n.Ep.Addr(), 0x7777, nil, nil)

	url := "http://" + n.MetricsAddr().String() + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET %s: %v %d %q", url, err, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	samples, err := CheckExposition(body)
	if err != nil {
		t.Fatalf("exposition: %v\n%s", err, body)
	}
	for _, want := range []string{
		`fastcall_drops_total{reason="trailing"} 0`,
		`fastcall_calls_served_total{call="0x0801",name="add"} 5`,
		`fastcall_call_errors_total{side="served",call="0x0805",name="fault",errno="EFAULT"} 1`,
		`fastcall_call_errors_total{side="served",call="0x0000",name="unknown",errno="ENOCALL"} 1`,
		`fastcall_call_duration_seconds_count{side="served",call="0x0801",name="add"} 5`,
		`fastcall_call_duration_seconds_bucket{side="served",call="0x0801",name="add",le="+Inf"} 5`,
		`fastcall_heartbeat_member_state{member="` + on.Ep.Addr().String() + `"`,
		"fastcall_heartbeat_members{state=\"alive\"}",
		"fastcall_master_tasks_started_total 0",
		"fastcall_dispatch_submitted_total 0",
		"fastcall_route_audit_written_total",
		"# TYPE fastcall_route_calls_total counter",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("scrape lacks %q; its lines of that family:\n%s", want, family(body, want))
		}
	}
	if samples < 100 {
		t.Errorf("%d samples", samples)
	}
	// The center node's families appear on its own scrape only.
	var b bytes.Buffer
	on.WriteMetrics(&b)
	if _, err := CheckExposition(b.Bytes()); err != nil || !bytes.Contains(b.Bytes(), []byte("fastcall_registry_writes_total")) {
		t.Fatalf("center exposition: %v", err)
	}
	if resp, err := http.Post(url, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v", err)
	} else {
		resp.Body.Close()
	}
}

// family returns the lines of body that start with want's metric name.
func family(body []byte, want string) string {
	name, _, _ := strings.Cut(want, "{")
	name, _, _ = strings.Cut(name, " ")
	var b strings.Builder
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestMetricsCoverStats: every counter and gauge of the services' Stats
// that the node exports is read by one metric: each numeric field, set
// alone to a value of its own, shows in some metric of its table. A
// counter added to a Stats without its metric fails here.
func TestMetricsCoverStats(t *testing.T) {
	covers(t, heartbeatFields)
	covers(t, masterFields)
	covers(t, workerFields)
	covers(t, centerFields)
	covers(t, dispatchFields)
	covers(t, auditFields)
}

func covers[T any](t *testing.T, fs []field[T]) {
	t.Helper()
	typ := reflect.TypeFor[T]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		var st T
		v := reflect.ValueOf(&st).Elem().Field(i)
		const mark = 7919
		switch v.Kind() {
		case reflect.Uint64, reflect.Uint32:
			v.SetUint(mark)
		case reflect.Int64, reflect.Int:
			v.SetInt(mark)
		default:
			continue
		}
		found := false
		for _, m := range fs {
			if m.get(&st) == mark {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s.%s is read by no metric", typ, f.Name)
		}
	}
}
