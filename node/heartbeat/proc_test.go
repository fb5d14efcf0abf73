//go:build linux

package heartbeat

// Multi-process tests. The test binary re-executes itself (lock/proctest):
// TestMain runs a worker node instead of the tests in the worker role. The worker talks to
// the master in the parent over loopback and reports on stdout, one line
// per fact: "ready ADDR INC", "event KIND ADDR INC", "stats ABORTED STALE
// FINISHED INC".

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/rfc"
	"fastcall/wire"
)

const (
	envMaster   = "FASTCALL_HB_TEST_MASTER"   // master address
	envInterval = "FASTCALL_HB_TEST_INTERVAL" // heartbeat interval, ms

	roleWorker = "worker"

	kindLong     = 1 // runs until cancelled
	kindStubborn = 2 // ignores cancellation, sleeps payload[0]*10 ms
	kindQuick    = 3 // returns its payload

	callSlow = wire.CallUserBase + 1 // worker: prints "slow", sleeps 20s, for parked callers

	procInterval  = 100 * time.Millisecond
	childDeadline = 40 * time.Second // a child never outlives this
	waitDeadline  = 10 * time.Second // the parent's bound on any wait for a child
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func() int{roleWorker: runWorker})
}

// runWorker is the worker role: a heartbeat member and worker of the
// master named by envMaster, reporting on stdout until the parent goes.
func runWorker() int {
	master, err := netip.ParseAddrPort(os.Getenv(envMaster))
	if err != nil {
		return 2
	}
	ms, _ := strconv.Atoi(os.Getenv(envInterval))
	rc := rfc.DefaultConfig()
	rc.NodeID = 2
	rc.Logger = quiet
	ep, err := rfc.Listen(rc)
	if err != nil {
		return 3
	}
	cfg := configAt(time.Duration(ms) * time.Millisecond)
	svc, err := Start(ep, cfg, []netip.AddrPort{master})
	if err != nil {
		return 3
	}
	out := make(chan string, 256)
	svc.OnEvent(func(ev Event) {
		select {
		case out <- fmt.Sprintf("event %s %s %d", ev.Kind, ev.Addr, ev.Incarnation):
		default:
		}
	})
	w, err := NewWorker(svc, DefaultWorkerConfig(), func(ctx context.Context, t *TaskInfo) ([]byte, wire.Errno) {
		switch t.Kind {
		case kindLong:
			select {
			case <-ctx.Done():
				return nil, wire.ECANCELED
			case <-time.After(childDeadline):
				return []byte("long"), wire.OK
			}
		case kindStubborn:
			d := 0
			if len(t.Payload) > 0 {
				d = int(t.Payload[0]) * 10
			}
			time.Sleep(time.Duration(d) * time.Millisecond)
			return []byte("stubborn"), wire.OK
		}
		return t.Payload, wire.OK
	})
	if err != nil {
		return 3
	}
	_ = ep.Register(callSlow, "slow", nil, 0, func(*rfc.Request, *wire.Params) wire.Errno {
		select {
		case out <- "slow":
		default:
		}
		time.Sleep(20 * time.Second)
		return wire.OK
	})
	fmt.Printf("ready %s %d\n", ep.Addr(), ep.Incarnation())
	parentGone := proctest.ParentGone()
	tk := time.NewTicker(50 * time.Millisecond)
	end := time.After(childDeadline)
	for {
		select {
		case line := <-out:
			fmt.Println(line)
		case <-tk.C:
			st := w.Stats()
			fmt.Printf("stats %d %d %d %d\n", st.Aborted, st.Stale, st.Finished, ep.Incarnation())
		case <-parentGone:
			return 0
		case <-end:
			return 0
		}
	}
}

// child is a worker process seen from the parent.
type child struct {
	*proctest.Child
	addr netip.AddrPort
	inc  uint32
}

// spawnWorker starts a worker process that knows master as its only
// member and waits for its "ready" line.
func spawnWorker(t *testing.T, master netip.AddrPort, interval time.Duration) *child {
	t.Helper()
	c := &child{Child: proctest.Start(t, roleWorker, envMaster+"="+master.String(),
		envInterval+"="+strconv.Itoa(int(interval/time.Millisecond)))}
	line, ok := c.next(t, "ready ")
	if !ok {
		t.Fatal("worker never ready")
	}
	f := strings.Fields(line)
	c.addr = netip.MustParseAddrPort(f[1])
	inc, _ := strconv.ParseUint(f[2], 10, 32)
	c.inc = uint32(inc)
	return c
}

// next returns the next line with the prefix, skipping others, within
// waitDeadline.
func (c *child) next(t *testing.T, prefix string) (string, bool) {
	t.Helper()
	line, ok := c.Next(prefix, waitDeadline)
	if ok && testing.Verbose() && prefix != "stats " {
		t.Log("child:", line)
	}
	return line, ok
}

// waitStats waits for a "stats" line that satisfies cond.
func (c *child) waitStats(t *testing.T, cond func(aborted, stale, finished, inc uint64) bool) bool {
	end := time.Now().Add(waitDeadline)
	for time.Now().Before(end) {
		line, ok := c.next(t, "stats ")
		if !ok {
			return false
		}
		var v [4]uint64
		for i, f := range strings.Fields(line)[1:] {
			v[i], _ = strconv.ParseUint(f, 10, 64)
		}
		if cond(v[0], v[1], v[2], v[3]) {
			return true
		}
	}
	return false
}

// masterNode is the parent's side: an endpoint, a service and a master.
type masterNode struct {
	*node
	m *Master
}

func startMaster(t *testing.T, interval time.Duration) *masterNode {
	ep := newEndpoint(t, 1, nil)
	cfg := configAt(interval)
	n := startNode(t, ep, cfg, nil)
	return &masterNode{node: n, m: newTestMaster(t, n.svc)}
}

// join adds the worker as a member and waits until a quick task runs on
// it, proving both channels work.
func (mn *masterNode) join(t *testing.T, c *child) {
	t.Helper()
	if err := mn.svc.AddMember(c.addr); err != nil {
		t.Fatal(err)
	}
	task, err := mn.m.Start(ctxFor(t, 5*time.Second), c.addr, kindQuick, []byte("hi"))
	if err != nil {
		t.Fatalf("quick task: %v", err)
	}
	res, err := task.Wait(ctxFor(t, 5*time.Second))
	if err != nil || string(res) != "hi" {
		t.Fatalf("quick task: %q %v", res, err)
	}
}

// TestKillWorker: SIGKILL a worker process. The master declares it dead
// and ends its tasks with ENODEAD; a caller parked on it returns ENODEAD,
// ended by the verdict, not by its own deadline (which would end it
// ETIMEDOUT). On real processes the test asserts no time: that the
// verdict comes within the detection bound is checked in virtual time by
// the simulation (TestSimHeartbeat, docs/SIMULATION.md).
func TestKillWorker(t *testing.T) {
	mn := startMaster(t, procInterval)
	c := spawnWorker(t, mn.ep.Addr(), procInterval)
	mn.join(t, c)
	var tasks []*Task
	for i := 0; i < 3; i++ {
		task, err := mn.m.Start(ctxFor(t, 5*time.Second), c.addr, kindLong, nil)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		tasks = append(tasks, task)
	}
	const parkedDeadline = 30 * time.Second
	parked, err := mn.ep.Go(ctxFor(t, parkedDeadline), c.addr, callSlow, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer parked.Release()
	if _, ok := c.next(t, "slow"); !ok {
		t.Fatal("the slow call never reached the worker")
	}

	killed := time.Now()
	if err := c.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for i, task := range tasks {
		_, err := task.Wait(ctxFor(t, waitDeadline))
		if errnoOf(err) != wire.ENODEAD {
			t.Fatalf("task %d: %v, want ENODEAD", i, err)
		}
	}
	if err := parked.Wait(); errnoOf(err) != wire.ENODEAD {
		t.Fatalf("parked call: %v, want ENODEAD", err)
	}
	t.Logf("dead after %v (bound %v)", time.Since(killed), DetectBound(mn.svc.Config()))
	if stateOf(mn.svc, c.addr) != StateDead {
		t.Fatal("worker not dead")
	}
	if _, err := mn.m.Start(ctxFor(t, time.Second), c.addr, kindQuick, nil); errnoOf(err) != wire.ENODEAD {
		t.Fatalf("start on dead worker: %v", err)
	}
	if st := mn.m.Stats(); st.Failed != 3 || mn.m.InFlight(c.addr) != 0 {
		t.Fatalf("master stats %+v", st)
	}
}

// TestStopWorker: SIGSTOP a worker past the dead bound, then SIGCONT. The
// master ends its tasks with ENODEAD; the worker learns it was declared
// dead, aborts its tasks and rejoins with a higher incarnation; its stale
// results are rejected with ESTALE and never applied; new tasks run.
func TestStopWorker(t *testing.T) {
	mn := startMaster(t, procInterval)
	c := spawnWorker(t, mn.ep.Addr(), procInterval)
	mn.join(t, c)
	long, err := mn.m.Start(ctxFor(t, 5*time.Second), c.addr, kindLong, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ignores cancellation and finishes stubbornRun after it starts:
	// while the worker is stopped, so its result goes out right after
	// SIGCONT.
	const stubbornRun = 500 * time.Millisecond
	stubbornStart := time.Now()
	stubborn, err := mn.m.Start(ctxFor(t, 5*time.Second), c.addr, kindStubborn, []byte{byte(stubbornRun / (10 * time.Millisecond))})
	if err != nil {
		t.Fatal(err)
	}
	oldInc := long.Incarnation()
	if oldInc == 0 || stubborn.Incarnation() != oldInc {
		t.Fatalf("task incarnations %d %d", oldInc, stubborn.Incarnation())
	}

	if err := c.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for _, task := range []*Task{long, stubborn} {
		if _, err := task.Wait(ctxFor(t, waitDeadline)); errnoOf(err) != wire.ENODEAD {
			t.Fatalf("task %d: %v, want ENODEAD", task.ID, err)
		}
	}
	t.Logf("tasks ended %v after SIGSTOP", time.Since(stopped))
	if stateOf(mn.svc, c.addr) != StateDead {
		t.Fatal("worker not dead")
	}
	// Stopped until the stubborn task's run has passed, so that its
	// result is due when the worker continues: the length of the fault,
	// it waits for no event.
	time.Sleep(time.Until(stubbornStart.Add(stubbornRun)))
	if err := c.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	if _, ok := c.next(t, "event declared-dead-by "+mn.ep.Addr().String()); !ok {
		t.Fatal("worker never learned it was declared dead")
	}
	if !waitFor(waitDeadline, func() bool {
		info, _ := mn.svc.Member(c.addr)
		return info.State == StateAlive && info.Incarnation > oldInc
	}) {
		info, _ := mn.svc.Member(c.addr)
		t.Fatalf("worker did not rejoin: %+v (old incarnation %d)", info, oldInc)
	}
	if !c.waitStats(t, func(aborted, stale, _, inc uint64) bool { return aborted >= 1 && stale >= 2 && inc > uint64(oldInc) }) {
		t.Fatal("worker did not abort its task and see both results rejected")
	}
	if st := mn.m.Stats(); st.Stale < 2 || st.Completed != 1 || st.Failed != 2 {
		t.Fatalf("master stats %+v: stale results must be rejected, not applied", st)
	}
	if long.Err() != wire.ENODEAD || stubborn.Err() != wire.ENODEAD {
		t.Fatal("a stale result changed a task's outcome")
	}
	// The rejoined worker takes new tasks under its new incarnation.
	task, err := mn.m.Start(ctxFor(t, 5*time.Second), c.addr, kindQuick, []byte("again"))
	if err != nil {
		t.Fatalf("start after rejoin: %v", err)
	}
	if res, err := task.Wait(ctxFor(t, 5*time.Second)); err != nil || string(res) != "again" || task.Incarnation() <= oldInc {
		t.Fatalf("task after rejoin: %q %v inc %d", res, err, task.Incarnation())
	}
	if n := mn.log.count(EventAlive, c.addr); n < 1 {
		t.Fatalf("no rejoin event")
	}
}
