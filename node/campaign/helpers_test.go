package campaign

// Helpers of the campaign tests: the rfcd processes, their configurations
// and the client endpoint that observes them.

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/node/builtin"
	"fastcall/node/dispatch"
	"fastcall/node/heartbeat"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

var testKey = []byte("campaign-cluster-key-0123456789ab")

// errnoCounts renders error counts by name, in table order.
func errnoCounts(m map[wire.Errno]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for e := wire.Errno(0); e < 1<<16-1; e++ {
		if n, ok := m[e]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", e.String(), n))
		}
		if e > 100 && e < wire.EUSER {
			e = wire.EUSER - 1
		}
	}
	return strings.Join(parts, ", ")
}

// listenClient opens an endpoint (a client, or a server of the built-in
// calls) with key (nil: checksum mode) that logs nothing; it is closed
// when the test ends.
func listenClient(t *testing.T, key []byte) *rfc.Endpoint {
	t.Helper()
	return rfctest.Listen(t, 0, func(c *rfc.Config) { c.Key = key })
}

// node is one rfcd process of the campaign.
type node struct {
	args []string
	addr netip.AddrPort
	line string // the start line, "rfcd: listening ADDR ..."
	proc *proctest.Child
}

// keyFile writes testKey as a key file and returns its path.
func keyFile(t *testing.T) string {
	t.Helper()
	return writeConfig(t, "cluster.key", string(testKey))
}

// startWait bounds the wait for a starting rfcd's first line.
const startWait = 30 * time.Second

// start runs rfcd with n.args, through prefix when given (a command that
// runs another, such as "ip netns exec NS"); addr is taken from its first
// line ("rfcd: listening ADDR ..."). The process is killed when the test
// ends if kill has not ended it before.
func (n *node) start(t *testing.T, prefix ...string) {
	t.Helper()
	argv := append(append([]string{}, prefix...), filepath.Join(binDir, "rfcd"))
	argv = append(argv, n.args...)
	p := proctest.StartCmd(t, exec.Command(argv[0], argv[1:]...))
	line, ok := p.Next("", startWait)
	f := strings.Fields(line)
	if !ok || len(f) < 3 {
		p.Kill()
		t.Fatalf("rfcd %v printed %q", n.args, line)
	}
	ap, err := netip.ParseAddrPort(f[2])
	if err != nil {
		p.Kill()
		t.Fatal(err)
	}
	n.addr, n.line, n.proc = ap, line, p
}

// kill ends the node with SIGKILL and reaps it.
func (n *node) kill() {
	if n.proc != nil {
		n.proc.Kill()
		n.proc = nil
	}
}

// startConfig writes the rfcd configuration body as name and starts a
// node on it; the node is killed when the test ends.
func startConfig(t *testing.T, name, body string) *node {
	t.Helper()
	return startNode(t, "-config", writeConfig(t, name, body))
}

// startNode starts rfcd with args; the node is killed when the test ends.
func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	n := &node{args: args}
	n.start(t)
	t.Cleanup(n.kill)
	return n
}

// churn kills a node with SIGKILL and restarts it on its address, again
// and again until end: it waits pause(up) before each kill and
// pause(down) before the restart; pick chooses the node of the kill
// numbered kills. It returns the number of kills.
func churn(t *testing.T, rng *rand.Rand, end time.Time, up, down [2]int, pick func(kills int) *node) (kills int) {
	t.Helper()
	for time.Now().Before(end) {
		time.Sleep(pause(rng, up))
		n := pick(kills)
		n.kill()
		kills++
		time.Sleep(pause(rng, down))
		n.start(t)
	}
	return kills
}

// pause is r[0] ms plus a random part of r[1] ms (none when r[1] is 0).
func pause(rng *rand.Rand, r [2]int) time.Duration {
	ms := r[0]
	if r[1] > 0 {
		ms += rng.Intn(r[1])
	}
	return time.Duration(ms) * time.Millisecond
}

// incrLog collects the outcomes of non-idempotent increments from many
// callers: a counter value returned twice by the same incarnation of a
// node means one run answered two calls. An increment run twice gives a
// value no caller sees, so finding one takes the counter itself
// (Counter.Value, or CallCounter).
type incrLog struct {
	mu   sync.Mutex
	seen map[incrKey]bool
	ok   int
	dups int
	errs map[wire.Errno]int
}

type incrKey struct {
	addr   netip.AddrPort
	incarn uint32
	v      uint64
}

func newIncrLog() *incrLog {
	return &incrLog{seen: map[incrKey]bool{}, errs: map[wire.Errno]int{}}
}

// incr calls builtin increment call no on dst within d and records the
// outcome; rep is the caller's own reply.
func (l *incrLog) incr(cli *rfc.Endpoint, dst netip.AddrPort, no uint16, d time.Duration, rep *rfc.Reply) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	err := cli.Call(ctx, dst, no, nil, rep)
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs[wire.AsErrno(err)]++
		return
	}
	l.ok++
	k := incrKey{dst, rep.Incarnation, rep.Param(0).Uint64()}
	if l.seen[k] {
		l.dups++
	}
	l.seen[k] = true
}

// inState holds for a member in state s.
func inState(s heartbeat.State) func(heartbeat.MemberInfo) bool {
	return func(m heartbeat.MemberInfo) bool { return m.State == s }
}

// aliveAs holds for a live member known by its node id: id, or any id
// when id is 0.
func aliveAs(id uint32) func(heartbeat.MemberInfo) bool {
	return func(m heartbeat.MemberInfo) bool {
		return m.State == heartbeat.StateAlive && m.Node != 0 && (id == 0 || m.Node == id)
	}
}

// writeConfig writes an rfcd file (a configuration, a key) in a directory
// of the test's, readable by its owner only, and returns its path.
func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startCenter starts a lone registry center rfcd with node id id, keyed
// with the key file key, its data in a directory of the test's; it is
// killed when the test ends.
func startCenter(t *testing.T, id int, key string) *node {
	t.Helper()
	return startConfig(t, "center.json", fmt.Sprintf(`{"addr": "127.0.0.1:0", "node": %d, "key_file": %q, "log_level": "error",
		"roles": ["center"], "center": {"data_dir": %q}}`, id, key, filepath.Join(t.TempDir(), "data")))
}

// waitInstance opens the shm map at path as the local SDK does and looks
// name up until it holds one instance, at addr, for at most within. It
// returns the instances, or an error that tells what the last lookup
// found.
func waitInstance(t *testing.T, path, name, addr string, within time.Duration) ([]sdk.Instance, error) {
	t.Helper()
	r, err := sdk.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for end := time.Now().Add(within); ; {
		in, err := r.Lookup(name)
		if err == nil && len(in) == 1 && in[0].Addr == addr {
			return in, nil
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("lookup of %s after %v: %+v %v, want one instance at %s", name, within, in, err, addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// memberOf returns the view that the node at addr has of member.
func memberOf(t *testing.T, cli *rfc.Endpoint, addr, member netip.AddrPort) (heartbeat.MemberInfo, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ms, err := heartbeat.QueryMembers(ctx, cli, addr)
	if err != nil {
		return heartbeat.MemberInfo{}, err
	}
	for _, m := range ms {
		if m.Addr == member {
			return m, nil
		}
	}
	return heartbeat.MemberInfo{}, wire.ENOENT
}

// waitMember polls the view that the node at addr has of member until
// cond holds, for at most 10 seconds, and returns the last view read and
// whether cond held.
func waitMember(t *testing.T, cli *rfc.Endpoint, addr, member netip.AddrPort, cond func(heartbeat.MemberInfo) bool) (heartbeat.MemberInfo, bool) {
	t.Helper()
	var m heartbeat.MemberInfo
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		if m, err = memberOf(t, cli, addr, member); err == nil && cond(m) {
			return m, true
		}
		if time.Now().After(deadline) {
			return m, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dispatchPing has the dispatcher at disp reach target (a remote
// dispatch-submit of one target) and returns the target's outcome and how
// long the dispatcher took to reach it. The call is rfcd's built-in
// counter read.
func dispatchPing(t *testing.T, cli *rfc.Endpoint, disp, target netip.AddrPort, resource string) (wire.Errno, time.Duration) {
	t.Helper()
	op := dispatch.Op{Resource: resource, Kind: dispatch.KindRead, Call: dispatch.CallOf(builtin.CallCounter, nil),
		Targets: []dispatch.Target{{Addr: target}}, Deadline: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	id, err := dispatch.SubmitRemote(ctx, cli, disp, &op)
	if err != nil {
		t.Fatalf("dispatch-submit to %v: %v", disp, err)
	}
	st, err := dispatch.WaitRemote(ctx, cli, disp, id, 5*time.Millisecond)
	if err != nil || len(st.Outcomes) != 1 {
		t.Fatalf("dispatch status of %d at %v: %+v %v", id, disp, st, err)
	}
	return st.Outcomes[0].Errno, st.Outcomes[0].Elapsed
}
