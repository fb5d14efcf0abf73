package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/keyfile"
	"fastcall/rfc"
	"fastcall/wire"
)

// demo runs rfcd processes on loopback and checks each step.
type demo struct {
	rfcd   string
	dir    string           // scratch directory: the cluster key
	agents []netip.AddrPort // live nodes serving the built-in calls, for dispatch
	key    []byte
	out    io.Writer
	procs  []*exec.Cmd
	ep     *rfc.Endpoint
	failed int
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	c := newCommand("demo", "", stderr, 0)
	rfcd := c.fs.String("rfcd", "", "path of the rfcd binary (default: next to rfcctl, then $PATH)")
	if _, code, ok := c.parse(args, nargs(0), "no arguments expected"); !ok {
		return code
	}
	path, err := findRfcd(*rfcd)
	if err != nil {
		fmt.Fprintf(stderr, "rfcctl: demo: %v\n", err)
		return 2
	}
	d := &demo{rfcd: path, out: stdout}
	defer d.cleanup()
	start := time.Now()
	if err := d.run(); err != nil {
		fmt.Fprintf(stdout, "[FAIL] %v\n", err)
		d.failed++
	}
	if d.failed > 0 {
		fmt.Fprintf(stdout, "demo: %d step(s) misbehaved (%s)\n", d.failed, time.Since(start).Round(time.Millisecond))
		return 1
	}
	fmt.Fprintf(stdout, "demo: every step behaved as described (%s)\n", time.Since(start).Round(time.Millisecond))
	return 0
}

func findRfcd(flagPath string) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "rfcd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("rfcd")
	if err != nil {
		return "", errors.New("rfcd binary not found: build it (make demo does) or pass -rfcd")
	}
	return p, nil
}

func (d *demo) say(format string, a ...any) { fmt.Fprintf(d.out, "       "+format+"\n", a...) }

func (d *demo) check(ok bool, step, format string, a ...any) {
	tag := "[ok]  "
	if !ok {
		tag = "[FAIL]"
		d.failed++
	}
	fmt.Fprintf(d.out, "%s %s: %s\n", tag, step, fmt.Sprintf(format, a...))
}

type execCmd = exec.Cmd

// start launches an rfcd on a free loopback port with the demo's key and
// returns its address from its first line.
func (d *demo) start(args ...string) (*exec.Cmd, netip.AddrPort, error) {
	return d.startArgs(d.rfcdArgs(args...)...)
}

// rfcdArgs is the flags of every demo rfcd (a loopback address the kernel
// picks, log level warn, the cluster key) followed by args.
func (d *demo) rfcdArgs(args ...string) []string {
	return append([]string{"-addr", "127.0.0.1:0", "-log-level", "warn", "-key", filepath.Join(d.dir, "cluster.key")}, args...)
}

// startArgs launches an rfcd with exactly args and returns its address from
// its first line.
func (d *demo) startArgs(args ...string) (*exec.Cmd, netip.AddrPort, error) {
	cmd, l, err := d.launch(args...)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	f := strings.Fields(l)
	if len(f) < 3 || f[1] != "listening" {
		return nil, netip.AddrPort{}, fmt.Errorf("rfcd did not start: %q", l)
	}
	ap, err := netip.ParseAddrPort(f[2])
	return cmd, ap, err
}

// launch starts an rfcd with exactly args and returns its first line of
// output ("rfcd: listening ADDR ..."; empty if it ended without one); the
// rest of its output is discarded. The process is killed at cleanup.
func (d *demo) launch(args ...string) (*exec.Cmd, string, error) {
	cmd := exec.Command(d.rfcd, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	d.procs = append(d.procs, cmd)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		return cmd, l, nil
	case <-time.After(10 * time.Second):
		return nil, "", errors.New("rfcd did not report its address in 10s")
	}
}

func (d *demo) cleanup() {
	if d.dir != "" {
		defer os.RemoveAll(d.dir)
	}
	if d.ep != nil {
		d.ep.Close()
	}
	for _, c := range d.procs {
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	}
}

func (d *demo) call(dst netip.AddrPort, no uint16, timeout time.Duration, f func(*wire.Params), rep *rfc.Reply) (error, time.Duration) {
	var p wire.Params
	p.Reset(make([]byte, 4096))
	if f != nil {
		f(&p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := d.ep.Call(ctx, dst, no, &p, rep)
	return err, time.Since(start)
}

func (d *demo) run() error {
	fmt.Fprintln(d.out, "== call engine: two rfcd nodes on loopback, one client ==")
	var err error
	if d.dir, err = os.MkdirTemp("", "fastcall-demo"); err != nil {
		return err
	}
	d.key = make([]byte, 32)
	if _, err := rand.Read(d.key); err != nil {
		return err
	}
	if err := keyfile.Write(filepath.Join(d.dir, "cluster.key"), d.key); err != nil {
		return err
	}
	d.say("cluster key written to %s (mode 0600); every datagram is authenticated", filepath.Join(d.dir, "cluster.key"))
	a, addrA, err := d.start("-node", "1")
	if err != nil {
		return err
	}
	b, addrB, err := d.start("-node", "2", "-workers", "1", "-queue", "1")
	if err != nil {
		return err
	}
	d.say("node 1 at %s, node 2 at %s (one worker, queue of one)", addrA, addrB)
	d.agents = append(d.agents, addrA)
	cfg := rfc.DefaultConfig()
	cfg.NodeID = 100
	cfg.Key = d.key
	cfg.Logger = quietLogger()
	if d.ep, err = rfc.Listen(cfg); err != nil {
		return err
	}
	var rep rfc.Reply

	for _, n := range []netip.AddrPort{addrA, addrB} {
		err, rtt := d.call(n, rfc.CallPing, time.Second, nil, nil)
		d.check(err == nil, "ping", "%s answered in %s", n, fmtDur(rtt))
	}
	stranger, err := rfc.Listen(rfc.Config{Addr: "127.0.0.1:0", MaxDatagram: wire.DefaultMaxDatagram, Readers: 1, Workers: 1,
		QueueLen: 1, BatchSize: 1, MaxPending: 4, DefaultTimeout: time.Second, InitialRTO: 20 * time.Millisecond,
		MinRTO: 2 * time.Millisecond, MaxRTO: time.Second, DupEntries: 16, DupAge: time.Second, SuspectAfter: 3,
		MaxPeers: 16, Logger: quietLogger()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err = stranger.Call(ctx, addrA, rfc.CallPing, nil, nil)
	cancel()
	stranger.Close()
	d.check(wire.AsErrno(err) == wire.ETIMEDOUT, "stranger", "a client without the key gets no answer at all (%s)", errName(errOrOK(err)))
	msg := []byte("one datagram there, one back")
	err, rtt := d.call(addrA, builtin.CallEcho, time.Second, func(p *wire.Params) { p.Bytes(msg) }, &rep)
	d.check(err == nil && bytes.Equal(rep.Param(0).Bytes(), msg), "echo", "%q came back in %s", rep.Param(0).Bytes(), fmtDur(rtt))
	err, _ = d.call(addrA, builtin.CallAdd, time.Second, func(p *wire.Params) { p.Int64(40); p.Int64(2) }, &rep)
	d.check(err == nil && rep.Param(0).Int64() == 42, "typed call", "add(i64:40, i64:2) = %s", renderValue(rep.Param(0)))
	var got []uint64
	for i := 0; i < 3; i++ {
		if err, _ := d.call(addrA, builtin.CallIncr, time.Second, nil, &rep); err == nil {
			got = append(got, rep.Param(0).Uint64())
		}
	}
	d.check(len(got) == 3 && got[0]+1 == got[1] && got[1]+1 == got[2], "non-idempotent call", "incr three times: %v (each ran once)", got)

	fmt.Fprintln(d.out, "== error paths: each failure is an error number, the node stays up ==")
	errCase := func(name string, dst netip.AddrPort, no uint16, f func(*wire.Params), want wire.Errno) {
		err, _ := d.call(dst, no, time.Second, f, nil)
		d.check(wire.AsErrno(err) == want, name, "got %s", errName(errOrOK(err)))
	}
	errCase("unknown call", addrA, wire.CallUserBase+0x0fff, nil, wire.ENOCALL)
	errCase("bad parameters", addrA, builtin.CallAdd, func(p *wire.Params) { p.Int64(1); p.String("two") }, wire.EINVAL)
	errCase("oversize request", addrA, builtin.CallEcho, func(p *wire.Params) { p.Bytes(make([]byte, 2000)) }, wire.EMSGSIZE)
	errCase("handler panics", addrA, builtin.CallFault, nil, wire.EFAULT)
	err, _ = d.call(addrA, rfc.CallPing, time.Second, nil, nil)
	d.check(err == nil, "still up", "node 1 answers after the panic")
	// Node 2 has one worker and a queue of one: the third and later of
	// several concurrent sleeps are refused at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[wire.Errno]int{}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err, _ := d.call(addrB, builtin.CallSleep, 3*time.Second, func(p *wire.Params) { p.Int64(300) }, nil)
			mu.Lock()
			results[wire.AsErrno(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	d.check(results[wire.EBUSY] >= 1 && results[wire.OK] >= 1, "backpressure", "6 concurrent sleeps on node 2: %d OK, %d EBUSY", results[wire.OK], results[wire.EBUSY])

	fmt.Fprintln(d.out, "== a node dies ==")
	b.Process.Signal(syscall.SIGKILL)
	b.Wait()
	d.say("node 2 killed with SIGKILL")
	err, rtt = d.call(addrB, builtin.CallAdd, 300*time.Millisecond, func(p *wire.Params) { p.Int64(1); p.Int64(1) }, nil)
	d.check(wire.AsErrno(err) == wire.ETIMEDOUT, "call to a dead node", "%s after %s (its deadline), retransmitted meanwhile", errName(errOrOK(err)), fmtDur(rtt))
	n := d.ep.MarkDead(addrB)
	d.say("node 2 declared dead (%d parked calls failed)", n)
	err, rtt = d.call(addrB, builtin.CallAdd, 5*time.Second, func(p *wire.Params) { p.Int64(1); p.Int64(1) }, nil)
	d.check(wire.AsErrno(err) == wire.ENODEAD && rtt < time.Second, "fast fail", "%s in %s, not after its 5s deadline", errName(errOrOK(err)), fmtDur(rtt))

	st := d.ep.Stats()
	var calls, retrans uint64
	for _, c := range st.Called {
		calls += c.Calls
		retrans += c.Retrans
	}
	d.check(calls > 0, "stats", "client made %d calls, %d retransmissions; %d datagrams in, %d out", calls, retrans, st.Rx, st.Tx)

	if err := d.runMetrics(); err != nil {
		return err
	}
	if err := d.runHeartbeat(); err != nil {
		return err
	}
	centers, err := d.runRegistry()
	if err != nil {
		return err
	}
	if err := d.runRoute(centers); err != nil {
		return err
	}
	if err := d.runDispatch(centers, d.agents); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "== shutdown ==")
	a.Process.Signal(syscall.SIGTERM)
	waitErr := make(chan error, 1)
	go func() { waitErr <- a.Wait() }()
	select {
	case err := <-waitErr:
		d.check(err == nil, "clean stop", "node 1 exited 0 on SIGTERM")
	case <-time.After(5 * time.Second):
		d.check(false, "clean stop", "node 1 did not exit within 5s of SIGTERM")
	}
	return nil
}

func errOrOK(err error) error {
	if err == nil {
		return wire.OK
	}
	return err
}
