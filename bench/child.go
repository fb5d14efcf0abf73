package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// A case that needs a second process re-executes this binary (os.Args[0])
// with childEnv naming the job. The child prepares, prints "ready", waits
// for a line on its standard input, measures for warm-up then the
// duration, and prints its round as JSON.
const (
	childEnv    = "FCBENCH_CHILD"    // job: "shm-get", "lock-readmostly", or a server below
	childArgEnv = "FCBENCH_CHILDARG" // the shared file
	childWarm   = "FCBENCH_CHILDWARMUP"
	childDur    = "FCBENCH_CHILDD"
)

type childRound struct {
	NsOp, OpsSec, Allocs float64
}

// ChildMain runs the child job named in the environment, if there is one,
// and reports whether it did (the caller then exits).
func ChildMain() bool {
	job := os.Getenv(childEnv)
	if job == "" {
		return false
	}
	if job == childRawEcho || job == childFastcall {
		serveChildMain(job)
		return true
	}
	if job == childRegCenters {
		regCentersChildMain()
		return true
	}
	if job == childDispatchTargets {
		dispatchTargetsChildMain()
		return true
	}
	warm, _ := time.ParseDuration(os.Getenv(childWarm))
	d, _ := time.ParseDuration(os.Getenv(childDur))
	path := os.Getenv(childArgEnv)
	var op func(w, i int)
	var done func()
	var err error
	switch job {
	case "shm-get":
		op, done, err = shmChildGet(path)
	case "lock-readmostly":
		op, done, err = lockChildReadMostly(path)
	default:
		err = fmt.Errorf("unknown child job %q", job)
	}
	if err != nil {
		childFail(err)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	ops, el, al := MeasureOps(1, warm, d, op)
	done()
	r := roundOf(1, ops, el, al)
	b, _ := json.Marshal(childRound{r.nsOp, r.opsSec, r.allocs})
	fmt.Println(string(b))
	return true
}

// child is a running child process.
type child struct {
	cmd *exec.Cmd
	in  interface{ Write([]byte) (int, error) }
	out *bufio.Reader
}

// spawn starts this binary again as a child running job, with env
// (KEY=VALUE) added to the environment, its stdin and stdout piped and its
// stderr this process's.
func spawn(job string, env ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), childEnv+"="+job), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, in, out, nil
}

// startChild starts job on path, waits until it is ready and tells it to
// start measuring.
func startChild(job, path string, o Options) (*child, error) {
	cmd, in, out, err := spawn(job, childArgEnv+"="+path, childWarm+"="+o.Warmup.String(), childDur+"="+o.Duration.String())
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := c.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		c.kill()
		return nil, fmt.Errorf("child %s not ready: %q %v", job, line, err)
	}
	if err := c.start(); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// go tells the child to start measuring.
func (c *child) start() error { _, err := c.in.Write([]byte("go\n")); return err }

// result waits for the child's round.
func (c *child) result() (opRound, error) {
	defer c.kill()
	line, err := c.out.ReadString('\n')
	if err != nil {
		return opRound{}, fmt.Errorf("child: %v", err)
	}
	var r childRound
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return opRound{}, fmt.Errorf("child output %q: %v", line, err)
	}
	return opRound{nsOp: r.NsOp, opsSec: r.OpsSec, allocs: r.Allocs}, nil
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// childFail ends a child that cannot do its job, saying why on its
// standard error (the parent's).
func childFail(err error) {
	fmt.Fprintln(os.Stderr, "fcbench child:", err)
	os.Exit(1)
}

// Server jobs: the child serves until its standard input ends, instead of
// measuring. Once it serves, it prints its ready line, "ready ADDR...":
// every address it serves on (printReady, read by startServerChild).
const (
	childRawEcho  = "calls-raw-echo" // the raw UDP echo loop
	childFastcall = "calls-fastcall" // a fastcall endpoint with the builtin echo, checksum mode
)

// serveChildMain runs a server job in the child.
func serveChildMain(job string) {
	start := startRawEcho
	if job == childFastcall {
		start = func() (netip.AddrPort, func(), error) { return startFastcallEcho(false) }
	}
	addr, stop, err := start()
	if err != nil {
		childFail(err)
	}
	printReady(addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
}

// printReady prints a server child's ready line, naming addrs.
func printReady(addrs ...netip.AddrPort) {
	w := bufio.NewWriter(os.Stdout)
	w.WriteString("ready")
	for _, a := range addrs {
		w.WriteString(" " + a.String())
	}
	w.WriteString("\n")
	w.Flush()
}

// serverChild is a child process serving calls on addrs; out reads what
// it prints after its ready line.
type serverChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	addrs []netip.AddrPort
}

// startServerChild starts a server job, with env (KEY=VALUE) added to its
// environment, and waits until it serves: until it prints a ready line
// naming n addresses.
func startServerChild(job string, n int, env ...string) (*serverChild, error) {
	cmd, in, out, err := spawn(job, env...)
	if err != nil {
		return nil, err
	}
	c := &serverChild{cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := c.out.ReadString('\n')
	f := strings.Fields(line)
	if err == nil && (len(f) != n+1 || f[0] != "ready") {
		err = fmt.Errorf("want ready and %d addresses", n)
	}
	for i := 1; err == nil && i < len(f); i++ {
		var a netip.AddrPort
		if a, err = netip.ParseAddrPort(f[i]); err == nil {
			c.addrs = append(c.addrs, a)
		}
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("child %s not ready: %.200q %v", job, line, err)
	}
	return c, nil
}

// stop ends the child: its standard input closes, it closes its server
// and exits; a child that does not is killed.
func (c *serverChild) stop() {
	c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}
