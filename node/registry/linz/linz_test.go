package linz

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/node/heartbeat"
	"fastcall/node/registry/client"
	"fastcall/rfc/rfctest"

	"github.com/anishathalye/porcupine"
)

// The defaults are the short version (one run of a few seconds);
// make reliability runs the long one.
var (
	runs     = flag.Int("linz.runs", 1, "runs of the kill test")
	duration = flag.Duration("linz.dur", 4*time.Second, "length of one run")
	killMin  = flag.Duration("linz.killmin", 700*time.Millisecond, "shortest time between two center kills")
	killMax  = flag.Duration("linz.killmax", 1500*time.Millisecond, "longest time between two center kills")
	clients  = flag.Int("linz.clients", 4, "clients")
	keys     = flag.Int("linz.keys", 40, "keys of the many-key workload")
	outDir   = flag.String("linz.out", "", "directory for the visualization of a history that is not linearizable (default: the test's temporary directory)")
)

// buildRfcd builds the daemon from the main module into dir.
func buildRfcd(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "rfcd")
	cmd := exec.Command("go", "build", "-o", bin, "./tools/rfcd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build rfcd: %v\n%s", err, out)
	}
	return bin
}

// centerProc is one center as an rfcd process, restarted on the same
// address and data directory.
type centerProc struct {
	t                 *testing.T
	bin, cfg, logPath string
	mu                sync.Mutex
	proc              *proctest.Child
}

func newCenterProc(t *testing.T, bin, dir string, idx int, addr, peer string) *centerProc {
	t.Helper()
	conf := map[string]any{
		"node": 101 + idx, "addr": addr, "insecure": true, "log_level": "info",
		"roles":     []string{"center"},
		"heartbeat": map[string]any{"members": []string{peer}, "interval": "100ms"},
		"center": map[string]any{"data_dir": filepath.Join(dir, fmt.Sprintf("data%d", idx)), "peer": peer,
			"index": idx, "fsync": "always"},
	}
	b, _ := json.Marshal(conf)
	p := &centerProc{t: t, bin: bin, cfg: filepath.Join(dir, fmt.Sprintf("center%d.json", idx)),
		logPath: filepath.Join(dir, fmt.Sprintf("center%d.log", idx))}
	if err := os.WriteFile(p.cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start starts the process (through lock/proctest, which kills it when
// the test ends) and waits for its first line, "rfcd: listening ...".
func (p *centerProc) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, "-config", p.cfg)
	cmd.Stderr = logf
	c := proctest.StartCmd(p.t, cmd)
	if line, ok := c.Next("", 20*time.Second); !ok || !strings.HasPrefix(line, "rfcd: listening") {
		c.Kill()
		return fmt.Errorf("rfcd did not start (first line %q); see %s", line, p.logPath)
	}
	p.mu.Lock()
	p.proc = c
	p.mu.Unlock()
	return nil
}

// kill SIGKILLs the process, if running, and reaps it.
func (p *centerProc) kill() {
	p.mu.Lock()
	c := p.proc
	p.proc = nil
	p.mu.Unlock()
	if c != nil {
		c.Kill()
	}
}

// newClient returns a registry Client on its own endpoint, with a
// heartbeat service watching the centers so that a killed center is
// declared dead (ENODEAD) rather than timed out.
func newClient(t *testing.T, node uint32, centers []netip.AddrPort) *client.Client {
	t.Helper()
	ep := rfctest.Listen(t, node, nil)
	hc := heartbeat.DefaultConfig().WithInterval(100 * time.Millisecond)
	hc.Logger = rfctest.Quiet
	hb, err := heartbeat.Start(ep, hc, centers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hb.Close)
	ccfg := client.DefaultClientConfig(centers...)
	ccfg.AttemptTimeout = 500 * time.Millisecond
	cl, err := client.NewClient(ep, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// workload runs one client's operations on keys until ctx ends.
func workload(ctx context.Context, h *History, id int, cl *client.Client, keys []string, rng *rand.Rand) {
	seen := map[string]uint64{} // last version this client saw of each key
	seq := 0
	for ctx.Err() == nil {
		key := keys[rng.IntN(len(keys))]
		seq++
		val := fmt.Sprintf("c%d-%d", id, seq)
		octx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var in Input
		var out Output
		switch r := rng.IntN(100); {
		case r < 40:
			in = Input{Kind: Get, Key: key}
			out = h.Run(octx, id, in, func(ctx context.Context) (string, uint64, error) {
				e, err := cl.Get(ctx, key)
				return string(e.Value), e.Version, err
			})
		case r < 55:
			in = Input{Kind: Put, Key: key, Value: val}
			out = h.Run(octx, id, in, func(ctx context.Context) (string, uint64, error) {
				v, err := cl.Put(ctx, key, []byte(val), 0)
				return "", v, err
			})
		case r < 85:
			expect := seen[key]
			if rng.IntN(10) == 0 {
				expect += 2 // most likely stale
			}
			in = Input{Kind: CAS, Key: key, Value: val, Expect: expect}
			out = h.Run(octx, id, in, func(ctx context.Context) (string, uint64, error) {
				v, err := cl.CAS(ctx, key, expect, []byte(val), 0)
				return "", v, err
			})
		default:
			var expect uint64
			if rng.IntN(2) == 0 {
				expect = seen[key]
			}
			in = Input{Kind: Delete, Key: key, Expect: expect}
			out = h.Run(octx, id, in, func(ctx context.Context) (string, uint64, error) {
				v, err := cl.DeleteVersion(ctx, key, expect)
				return "", v, err
			})
		}
		cancel()
		if ctx.Err() != nil && out.Result == Unknown {
			// Cut short by the end of the run: recorded as unknown,
			// which the checker accepts either way.
			return
		}
		switch {
		case out.Result == OK && (in.Kind == Delete):
			seen[key] = 0
		case out.Result == OK:
			seen[key] = out.Version
		case out.Result == NoEnt:
			seen[key] = 0
		}
	}
}

// runOnce runs the clients against two rfcd centers for d while killing
// a center every killMin..killMax (SIGKILL, restarted at once), then
// checks the history.
func runOnce(t *testing.T, bin string, nkeys int, d time.Duration, seed uint64) (porcupine.CheckResult, *History, int) {
	dir := t.TempDir()
	addrs := rfctest.FreeAddrs(t, 2)
	procs := []*centerProc{
		newCenterProc(t, bin, dir, 0, addrs[0], addrs[1]),
		newCenterProc(t, bin, dir, 1, addrs[1], addrs[0]),
	}
	for _, p := range procs {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.kill)
	}
	centers := []netip.AddrPort{netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1])}
	keyNames := make([]string, nkeys)
	for i := range keyNames {
		keyNames[i] = fmt.Sprintf("linz/%02d", i)
	}
	h := NewHistory()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		cl := newClient(t, uint32(1+i), centers)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			workload(ctx, h, i, cl, keyNames, rng)
		}()
	}
	kills := 0
	rng := rand.New(rand.NewPCG(seed, 1000))
	var startErr error
	for {
		wait := *killMin + time.Duration(rng.Int64N(int64(*killMax-*killMin)+1))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		p := procs[rng.IntN(2)]
		p.kill()
		kills++
		if startErr = p.start(); startErr != nil {
			cancel()
			break
		}
	}
	wg.Wait()
	if startErr != nil {
		t.Fatalf("restart: %v", startErr)
	}
	var vis io.Writer
	visPath := ""
	res := h.Check(5*time.Minute, nil)
	if res == porcupine.Illegal {
		od := *outDir
		if od == "" {
			od = dir
		}
		visPath = filepath.Join(od, fmt.Sprintf("linz-%d.html", seed))
		if f, err := os.Create(visPath); err == nil {
			vis = f
			h.Check(5*time.Minute, vis)
			f.Close()
			t.Logf("visualization: %s", visPath)
		}
		var sb strings.Builder
		h.Explain(&sb)
		t.Log(sb.String())
		for _, p := range procs {
			if b, err := os.ReadFile(p.logPath); err == nil {
				os.WriteFile(filepath.Join(od, fmt.Sprintf("linz-%d-%s", seed, filepath.Base(p.logPath))), b, 0o644)
			}
		}
	}
	return res, h, kills
}

// TestLinearizableUnderCenterKills: clients run Get, Put, CAS and Delete
// on one key and on many while the two centers (rfcd processes) are
// SIGKILLed and restarted one at a time; every history must be
// linearizable, with ECONFLICT and ENOENT taken as definite outcomes.
func TestLinearizableUnderCenterKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildRfcd(t, t.TempDir())
	workloads := []struct {
		name string
		keys int
	}{{"one-key", 1}, {"many-keys", *keys}}
	passed, total := 0, 0
	for run := 0; run < *runs; run++ {
		for _, w := range workloads {
			total++
			seed := uint64(time.Now().UnixNano())
			ok := t.Run(fmt.Sprintf("%s/run%d", w.name, run), func(t *testing.T) {
				res, h, kills := runOnce(t, bin, w.keys, *duration, seed)
				n := h.Counts()
				t.Logf("seed %d: %d operations (ok %d, conflict %d, noent %d, unknown %d), %d kills: %v",
					seed, h.Len(), n[OK], n[Conflict], n[NoEnt], n[Unknown], kills, res)
				if res != porcupine.Ok {
					t.Fatalf("history not linearizable: %v", res)
				}
				if n[OK] == 0 {
					t.Fatal("no operation succeeded")
				}
			})
			if ok {
				passed++
			}
		}
	}
	t.Logf("%d of %d runs linearizable", passed, total)
}
