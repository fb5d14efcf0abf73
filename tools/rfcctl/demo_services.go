package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"fastcall/node/daemon"
	"fastcall/node/heartbeat"
	"fastcall/node/registry/client"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// freeAddrs returns n loopback addresses with ports free at the moment.
func freeAddrs(n int) ([]string, error) {
	var conns []*net.UDPConn
	var out []string
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		out = append(out, c.LocalAddr().String())
	}
	return out, nil
}

// config writes a JSON node configuration and returns its path.
func (d *demo) config(name string, c daemon.Config) (string, error) {
	c.KeyFile = filepath.Join(d.dir, "cluster.key")
	c.LogLevel = "error"
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(d.dir, name+".json")
	return p, os.WriteFile(p, b, 0o600)
}

// nodeConfig is the default configuration of the demo node number node at
// addr in one role.
func nodeConfig(node uint32, addr, role string) daemon.Config {
	c := daemon.Default()
	c.Node = node
	c.Addr = addr
	c.Roles = []string{role}
	return c
}

// startConfig writes c as the configuration name and starts an rfcd on it;
// it returns the process and the configuration's path.
func (d *demo) startConfig(name string, c daemon.Config) (*execCmd, string, error) {
	p, err := d.config(name, c)
	if err != nil {
		return nil, "", err
	}
	cmd, _, err := d.startArgs("-config", p)
	return cmd, p, err
}

// others returns every address of all but skip.
func others(all []string, skip int) []string {
	var out []string
	for i, a := range all {
		if i != skip {
			out = append(out, a)
		}
	}
	return out
}

// runHeartbeat shows liveness, master/worker tasks, and what happens
// when a worker dies.
func (d *demo) runHeartbeat() error {
	fmt.Fprintln(d.out, "== heartbeat: a master and two workers ==")
	addrs, err := freeAddrs(3)
	if err != nil {
		return err
	}
	iv := 100 * time.Millisecond
	var procs [3]*execCmd
	names := []string{"master", "worker-1", "worker-2"}
	for i := range addrs {
		role := daemon.RoleWorker
		if i == 0 {
			role = daemon.RoleMaster
		}
		c := nodeConfig(uint32(10+i), addrs[i], role)
		c.Heartbeat = daemon.HeartbeatConfig{Members: others(addrs, i), Interval: daemon.Duration{Duration: iv}}
		if procs[i], _, err = d.startConfig(names[i], c); err != nil {
			return err
		}
	}
	master, w1, w2 := netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1]), netip.MustParseAddrPort(addrs[2])
	d.agents = append(d.agents, master, w2)
	d.say("master %s, workers %s and %s, probe interval %s", master, w1, w2, iv)
	alive := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ms, err := heartbeat.QueryMembers(ctx, d.ep, master)
		if err != nil {
			return -1
		}
		n := 0
		for _, m := range ms {
			if m.State == heartbeat.StateAlive && m.HeardAgo >= 0 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive() != 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	d.check(alive() == 2, "membership", "the master sees both workers alive")
	task := func(w netip.AddrPort, kind uint64, payload []byte, timeout time.Duration) (error, time.Duration, []byte) {
		var rep rfc.Reply
		err, rtt := d.call(master, daemon.CallTaskRun, timeout, func(p *wire.Params) {
			p.String(w.String())
			p.Uint64(kind)
			p.Bytes(payload)
		}, &rep)
		var res []byte
		if err == nil {
			res = append(res, rep.Param(0).Bytes()...)
		}
		return err, rtt, res
	}
	err, _, res := task(w2, daemon.TaskEcho, []byte("hello worker"), 2*time.Second)
	d.check(err == nil && string(res) == "hello worker", "task", "master ran an echo task on worker-2: %q", res)
	ms := make([]byte, 8)
	binary.BigEndian.PutUint64(ms, 20000)
	type outcome struct {
		err error
		rtt time.Duration
	}
	long := make(chan outcome, 1)
	go func() {
		err, rtt, _ := task(w1, daemon.TaskSleep, ms, 30*time.Second)
		long <- outcome{err, rtt}
	}()
	time.Sleep(300 * time.Millisecond)
	d.say("a 20 s task runs on worker-1; killing worker-1 with SIGKILL")
	killed := time.Now()
	procs[1].Process.Signal(syscall.SIGKILL)
	procs[1].Wait()
	select {
	case o := <-long:
		took := time.Since(killed)
		d.check(wire.AsErrno(o.err) == wire.ENODEAD && took < 3*time.Second, "detection", "the master declared worker-1 dead and ended its task with %s %s after the kill (its deadline was 30 s)",
			errName(errOrOK(o.err)), took.Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		d.check(false, "detection", "the task on the killed worker did not end within 10 s")
	}
	err, rtt, _ := task(w1, daemon.TaskEcho, []byte("x"), 2*time.Second)
	d.check(wire.AsErrno(err) == wire.ENODEAD && rtt < time.Second, "fast fail", "a new task for the dead worker: %s in %s", errName(errOrOK(err)), fmtDur(rtt))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	view, err := heartbeat.QueryMembers(ctx, d.ep, master)
	cancel()
	var states []string
	for _, m := range view {
		states = append(states, m.Addr.String()+"="+m.State.String())
	}
	d.check(err == nil && strings.Contains(strings.Join(states, " "), addrs[1]+"=dead"), "members", "%s", strings.Join(states, ", "))
	return nil
}

// runRegistry shows two centers, a node agent writing its shm map, lookups
// without network calls, and a center dying with no registration lost.
func (d *demo) runRegistry() ([]string, error) {
	fmt.Fprintln(d.out, "== registry: two centers, an agent with a shared-memory map ==")
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	var cfgPaths [2]string
	iv := daemon.Duration{Duration: 100 * time.Millisecond}
	var centers [2]*execCmd
	for i := 0; i < 2; i++ {
		c := nodeConfig(uint32(20+i), addrs[i], daemon.RoleCenter)
		c.Center = daemon.CenterConfig{DataDir: filepath.Join(d.dir, fmt.Sprintf("center-%d", i)), Peer: addrs[1-i], Index: i}
		c.Heartbeat = daemon.HeartbeatConfig{Members: []string{addrs[1-i]}, Interval: iv}
		if centers[i], cfgPaths[i], err = d.startConfig(fmt.Sprintf("center-%d", i), c); err != nil {
			return nil, err
		}
	}
	shmPath := filepath.Join(d.dir, "node.shm")
	c := nodeConfig(30, addrs[2], daemon.RoleAgent)
	c.Registry = daemon.RegistryConfig{Centers: addrs[:2], ShmFile: shmPath,
		Services: []daemon.ServiceConfig{{Name: "db", Addr: "10.0.0.1:5432", Meta: "primary"}}}
	c.Heartbeat = daemon.HeartbeatConfig{Members: addrs[:2], Interval: iv}
	if _, _, err := d.startConfig("agent", c); err != nil {
		return nil, err
	}
	d.say("centers %s and %s; node with an agent at %s writing %s", addrs[0], addrs[1], addrs[2], shmPath)
	d.agents = append(d.agents, netip.MustParseAddrPort(addrs[2]))
	var rd *sdk.Reader
	for t0 := time.Now(); time.Since(t0) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if rd, err = sdk.Open(shmPath); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	waitFor := func(name string) ([]sdk.Instance, time.Duration) {
		start := time.Now()
		for time.Since(start) < 5*time.Second {
			if is, err := rd.Lookup(name); err == nil && len(is) > 0 {
				return is, time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		return nil, time.Since(start)
	}
	is, _ := waitFor("db")
	d.check(len(is) == 1 && is[0].Addr == "10.0.0.1:5432", "shm lookup", "this process read db -> %s from the node's map, no network call", instAddrs(is))
	t0 := time.Now()
	lookups := 0
	for time.Since(t0) < 100*time.Millisecond {
		for i := 0; i < 1000; i++ {
			rd.Lookup("db")
		}
		lookups += 1000
	}
	d.say("%.1fM lookups/s from shared memory", float64(lookups)/time.Since(t0).Seconds()/1e6)
	ccs := []netip.AddrPort{netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1])}
	cli, err := client.NewClient(d.ep, client.DefaultClientConfig(ccs...))
	if err != nil {
		return nil, err
	}
	reg := func(name, addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cli.Register(ctx, name, addr, nil, 30*time.Second)
		return err
	}
	err = reg("cache", "10.0.0.2:6379")
	is, took := waitFor("cache")
	d.check(err == nil && len(is) == 1, "push", "registered cache at the centers; it was in the node's map %s after the registration was acknowledged", took.Round(time.Microsecond))
	centers[0].Process.Signal(syscall.SIGKILL)
	centers[0].Wait()
	d.say("center %s killed with SIGKILL", addrs[0])
	err = reg("queue", "10.0.0.3:5672")
	d.check(err == nil, "failover", "registered queue through the surviving center (%s)", errName(errOrOK(err)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	all, err := cli.LookupPrefix(ctx, "")
	cancel()
	var names []string
	for _, i := range all {
		names = append(names, i.Name)
	}
	joined := strings.Join(names, ",")
	d.check(err == nil && strings.Contains(joined, "db") && strings.Contains(joined, "cache") && strings.Contains(joined, "queue"),
		"no registration lost", "the survivor holds %s", joined)
	is, _ = waitFor("queue")
	d.check(len(is) == 1, "map follows", "the node's map has queue too")
	if _, _, err := d.startArgs("-config", cfgPaths[0]); err != nil {
		return nil, err
	}
	only0, err := client.NewClient(d.ep, client.DefaultClientConfig(ccs[0]))
	if err != nil {
		return nil, err
	}
	var back string
	for t0 := time.Now(); time.Since(t0) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		all, err := only0.LookupPrefix(ctx, "")
		cancel()
		if err == nil && len(all) == 3 {
			back = instNames(all)
			break
		}
	}
	d.check(back != "", "catch-up", "the restarted center caught up from its log and its peer: %s", back)
	return addrs[:2], nil
}

func instNames(is []sdk.Instance) string {
	var s []string
	for _, i := range is {
		s = append(s, i.Name)
	}
	return strings.Join(s, ",")
}

func instAddrs(is []sdk.Instance) string {
	var s []string
	for _, i := range is {
		s = append(s, i.Addr)
	}
	return strings.Join(s, ",")
}
