package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"syscall"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/daemon"
	"fastcall/node/dispatch"
	"fastcall/node/registry/client"
	"fastcall/node/route"
	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/wire"
)

// runRoute shows a router in front of two sub-clusters of two members,
// its audit trail, and failover when an active member dies.
func (d *demo) runRoute(centers []string) error {
	fmt.Fprintln(d.out, "== router: two sub-clusters of two members, audit trail ==")
	addrs, err := freeAddrs(5)
	if err != nil {
		return err
	}
	iv := daemon.Duration{Duration: 100 * time.Millisecond}
	names := []string{"alpha-1", "alpha-2", "beta-1", "beta-2"}
	var procs [4]*execCmd
	for i := 0; i < 4; i++ {
		c := nodeConfig(uint32(40+i), addrs[i], daemon.RoleMember)
		c.Member = daemon.MemberConfig{Active: i%2 == 0}
		c.Heartbeat = daemon.HeartbeatConfig{Members: []string{addrs[4]}, Interval: iv}
		if procs[i], _, err = d.startConfig(names[i], c); err != nil {
			return err
		}
	}
	rc := nodeConfig(50, addrs[4], daemon.RoleRouter)
	rc.Registry = daemon.RegistryConfig{Centers: centers}
	rc.Router = daemon.RouterConfig{AuditDir: filepath.Join(d.dir, "audit"), ForwardTimeout: daemon.Duration{Duration: 300 * time.Millisecond}}
	rc.Heartbeat = daemon.HeartbeatConfig{Members: addrs[:4], Interval: iv}
	if _, _, err := d.startConfig("router", rc); err != nil {
		return err
	}
	router := netip.MustParseAddrPort(addrs[4])
	for _, a := range []string{addrs[1], addrs[2], addrs[3], addrs[4]} {
		d.agents = append(d.agents, netip.MustParseAddrPort(a))
	}
	var cs []netip.AddrPort
	for _, c := range centers {
		cs = append(cs, netip.MustParseAddrPort(c))
	}
	cli, err := client.NewClient(d.ep, client.DefaultClientConfig(cs...))
	if err != nil {
		return err
	}
	table := route.RegistryMounts{C: cli}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tp := route.DefaultTablePrefix
	for _, step := range []func() error{
		func() error {
			return route.AddCluster(ctx, table, tp, "alpha", []route.MemberSpec{
				{Addr: netip.MustParseAddrPort(addrs[0]), Role: route.RoleActive}, {Addr: netip.MustParseAddrPort(addrs[1]), Role: route.RoleStandby}})
		},
		func() error {
			return route.AddCluster(ctx, table, tp, "beta", []route.MemberSpec{
				{Addr: netip.MustParseAddrPort(addrs[2]), Role: route.RoleActive}, {Addr: netip.MustParseAddrPort(addrs[3]), Role: route.RoleStandby}})
		},
		func() error { return route.AddMount(ctx, table, tp, "/alpha", "alpha") },
		func() error { return route.AddMount(ctx, table, tp, "/beta", "beta") },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	d.say("router %s; /alpha -> alpha (%s active, %s standby), /beta -> beta (%s, %s); table kept in the registry", router, addrs[0], addrs[1], addrs[2], addrs[3])
	put := func(path, val string) (error, netip.AddrPort) {
		err, _ := d.call(router, route.CallNSPut, 2*time.Second, func(p *wire.Params) { p.String(path); p.Bytes([]byte(val)) }, nil)
		return err, router
	}
	getAt := func(dst netip.AddrPort, path string) (string, error) {
		var rep rfc.Reply
		err, _ := d.call(dst, route.CallNSGet, 2*time.Second, func(p *wire.Params) { p.String(path) }, &rep)
		if err != nil {
			return "", err
		}
		return string(rep.Param(0).Bytes()), nil
	}
	// The router learns the table by subscription, one entry at a time;
	// retry each first put until its mount has arrived.
	putWhenMounted := func(path, val string) error {
		var err error
		for t0 := time.Now(); time.Since(t0) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
			if err, _ = put(path, val); wire.AsErrno(err) != wire.ENOENT {
				return err
			}
		}
		return err
	}
	perr := putWhenMounted("/alpha/users/1", "ann")
	err2 := putWhenMounted("/beta/orders/7", "tea")
	v1, e1 := getAt(netip.MustParseAddrPort(addrs[0]), "/alpha/users/1")
	v2, e2 := getAt(netip.MustParseAddrPort(addrs[2]), "/beta/orders/7")
	_, e3 := getAt(netip.MustParseAddrPort(addrs[0]), "/beta/orders/7")
	d.check(perr == nil && err2 == nil && e1 == nil && e2 == nil && v1 == "ann" && v2 == "tea" && wire.AsErrno(e3) == wire.ENOENT,
		"routing", "puts by path through the router landed on alpha-1 (/alpha/users/1=%s) and beta-1 (/beta/orders/7=%s) only", v1, v2)
	g, err := getAt(router, "/alpha/users/1")
	d.check(err == nil && g == "ann", "routed get", "/alpha/users/1 read back through the router: %s", g)
	queryAudit := func() []audit.Entry {
		actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer acancel()
		es, _ := route.AuditQuery(actx, d.ep, router, route.AuditFilter{Call: "ns-put"})
		return es
	}
	var es []audit.Entry
	for t0 := time.Now(); time.Since(t0) < 2*time.Second; time.Sleep(20 * time.Millisecond) {
		if es = queryAudit(); len(es) >= 2 {
			break
		}
	}
	d.check(len(es) >= 2, "audit", "query by call name ns-put: %d records", len(es))
	for _, e := range es {
		d.say("  %s client %s -> %s %s %s in %s, params %s", e.Start.Format("15:04:05.000"), e.Client, e.Cluster, e.Dest, e.Errno.String(), e.Elapsed, e.Params)
	}
	procs[0].Process.Signal(syscall.SIGKILL)
	procs[0].Wait()
	d.say("alpha-1, the active member of alpha, killed with SIGKILL")
	t0 := time.Now()
	var ferr error
	for time.Since(t0) < 5*time.Second {
		if ferr, _ = put("/alpha/users/2", "bob"); ferr == nil {
			break
		}
	}
	v, _ := getAt(netip.MustParseAddrPort(addrs[1]), "/alpha/users/2")
	d.check(ferr == nil && v == "bob", "failover", "/alpha/users/2 written through the router to alpha-2, the standby it promoted, %s after the kill", time.Since(t0).Round(time.Millisecond))
	es = queryAudit()
	last := es[len(es)-1]
	d.check(last.Dest.String() == addrs[1], "audit after failover", "last ns-put went to %s (tries %d, before: %s)", last.Dest, last.Tries, orNone(last.Prev))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// runDispatch shows one operation fanned out to many nodes at once, and a
// conflicting operation refused.
func (d *demo) runDispatch(centers []string, targets []netip.AddrPort) error {
	fmt.Fprintln(d.out, "== dispatch: one operation to many agents ==")
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	c := nodeConfig(60, addrs[0], daemon.RoleDisp)
	c.Registry = daemon.RegistryConfig{Centers: centers}
	for _, t := range targets {
		c.Dispatcher.Targets = append(c.Dispatcher.Targets, t.String()) // a remote submit may name only these
	}
	if _, _, err := d.startConfig("dispatcher", c); err != nil {
		return err
	}
	disp := netip.MustParseAddrPort(addrs[0])
	var ps wire.Params
	ps.Reset(make([]byte, 64))
	ps.Int64(200)
	op := dispatch.Op{Resource: "net/vlan-7", Kind: dispatch.KindUpdate, Call: dispatch.CallOf(builtin.CallSleep, &ps), Deadline: 3 * time.Second}
	for _, t := range targets {
		op.Targets = append(op.Targets, dispatch.Target{Addr: t})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := dispatch.SubmitRemote(ctx, d.ep, disp, &op)
	if err != nil {
		d.check(false, "submit", "%s", errName(err))
		return nil
	}
	d.say("operation %d: update net/vlan-7, a 200 ms call to each of %d agents", id, len(targets))
	conflicting := op
	_, cerr := dispatch.SubmitRemote(ctx, d.ep, disp, &conflicting)
	d.check(wire.AsErrno(cerr) == wire.ECONFLICT, "conflict", "a second update of net/vlan-7 while the first runs: %s, nothing sent", errName(errOrOK(cerr)))
	other := op
	other.Resource = "net/vlan-8"
	other.Kind = dispatch.KindRead
	oid, oerr := dispatch.SubmitRemote(ctx, d.ep, disp, &other)
	d.check(oerr == nil, "no conflict", "a read of net/vlan-8 proceeds at the same time (operation %d)", oid)
	st, err := dispatch.WaitRemote(ctx, d.ep, disp, id, 10*time.Millisecond)
	serial := time.Duration(len(targets)) * 200 * time.Millisecond
	d.check(err == nil && st.Failed == 0 && st.Done == len(targets), "fan-out", "%d/%d agents OK in %s (one after another: at least %s)",
		st.Done, st.Targets, st.Elapsed.Round(time.Millisecond), serial)
	dispatch.WaitRemote(ctx, d.ep, disp, oid, 10*time.Millisecond)
	_, aerr := dispatch.SubmitRemote(ctx, d.ep, disp, &conflicting)
	d.check(aerr == nil, "marker cleared", "after the operation ended, net/vlan-7 takes a new update (%s)", errName(errOrOK(aerr)))
	return nil
}
