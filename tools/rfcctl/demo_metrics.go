package main

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/daemon"
	"fastcall/wire"
)

// runMetrics starts an rfcd with -metrics-addr, makes a few calls to it
// and shows one scrape of its /metrics, checked line by line.
func (d *demo) runMetrics() error {
	fmt.Fprintln(d.out, "== metrics: one scrape of /metrics ==")
	cmd, l, err := d.launch(d.rfcdArgs("-node", "3", "-metrics-addr", "127.0.0.1:0")...)
	if err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	// "rfcd: listening ADDR node N incarnation I metrics MADDR"
	f := strings.Fields(l)
	if len(f) != 9 || f[7] != "metrics" {
		return fmt.Errorf("rfcd with -metrics-addr said %q", l)
	}
	addr, err := netip.ParseAddrPort(f[2])
	if err != nil {
		return err
	}
	d.say("node 3 at %s serves http://%s/metrics", addr, f[8])
	for i := int64(0); i < 3; i++ {
		d.call(addr, builtin.CallAdd, time.Second, func(p *wire.Params) { p.Int64(i); p.Int64(i) }, nil)
	}
	d.call(addr, builtin.CallFault, time.Second, nil, nil)

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + f[8] + "/metrics")
	if err != nil {
		d.check(false, "scrape", "%v", err)
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	samples, err := daemon.CheckExposition(body)
	if err != nil || resp.StatusCode != http.StatusOK {
		d.check(false, "scrape", "HTTP %d, %d samples: %v", resp.StatusCode, samples, err)
		return nil
	}
	d.check(true, "scrape", "%d bytes, %d samples, every line valid Prometheus text format", len(body), samples)
	for _, s := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(s, `fastcall_calls_served_total{call="0x0801"`) ||
			strings.HasPrefix(s, `fastcall_call_errors_total{side="served",call="0x0805"`) ||
			strings.HasPrefix(s, `fastcall_call_duration_seconds_bucket{side="served",call="0x0801",name="add",le="0.000128"}`) ||
			strings.HasPrefix(s, `fastcall_drops_total{reason="unauthenticated"}`) {
			d.say("%s", s)
		}
	}
	return nil
}
