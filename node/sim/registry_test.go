package sim

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/agent"
	"fastcall/node/registry/center"
	"fastcall/node/registry/center/memdisk"
	"fastcall/node/registry/client"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// TestSimRegistry is the registry scenario: two centers (data on
// in-memory disks, a crash loses what they had not synced), agents writing their shm maps (files in the temp dir) and
// writers putting kv entries, under the fault schedule (centers and
// agents crash and restart from their files). Invariants: no
// acknowledged write is lost (every center ends at or above the highest
// version acknowledged for each key); once the faults stop both centers
// converge (same version of every key) and every agent's map holds the
// centers' version of every key.
func TestSimRegistry(t *testing.T) { runSeeds(t, "Registry", runRegistry) }

// regKeys is how many keys the writers share.
const regKeys = 8

// Roles of the registry scenario's nodes, by index.
const (
	regCenter0 = iota
	regCenter1
	regAgent0
	regAgent1
	regWriter0
	regWriter1
	regNodes
)

type regWorld struct {
	t     *testing.T
	dir   string
	net   *simnet.Network
	chk   *checker
	cfg   rfc.Config
	addrs []netip.AddrPort
	eps   []*rfc.Endpoint
	ctrs  [2]*center.Center
	disks [2]*memdisk.Disk // each center's disk, kept across its crashes
	seed  uint64
	boots [regNodes]uint64 // starts of each node so far
	ags   [2]*agent.Agent
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    struct {
		sync.Mutex
		acked map[string]uint64 // key -> highest version acknowledged
	}
}

func runRegistry(t *testing.T, seed uint64, chk *checker) {
	// The client's retry jitter (rfc.Backoff) is seeded from crypto/rand.
	cryptotest.SetGlobalRandom(t, seed)
	rnd := simnet.NewRand(seed)
	w := &regWorld{seed: seed, t: t, dir: t.TempDir(), chk: chk, stop: make(chan struct{})}
	w.mu.acked = map[string]uint64{}
	w.net = simnet.New(seed, calm(), chk.tr)
	defer w.net.Close()
	w.cfg, w.addrs = crashNodes(regNodes, 2, 7200)
	w.eps = make([]*rfc.Endpoint, regNodes)
	for i := range w.disks {
		w.disks[i] = memdisk.New()
	}
	chk.tr.Add("world", noAddr, noAddr, fmt.Sprintf("seed=%d", seed))
	for i := 0; i < regNodes; i++ {
		w.start(i)
	}
	startClients(&w.wg, rnd, regWriter0, regWriter1, w.writer)
	runAnyFaults(w.net, chk, rnd.Fork(1), w.addrs[:regWriter0], w.crash, w.start)
	close(w.stop)
	w.wg.Wait()
	// Once the faults stop: anti-entropy, pushes and resubscription
	// bring everything together within a few anti-entropy periods.
	time.Sleep(3*center.DefaultAntiEntropyEvery + *flagQuiet)
	w.check()
	for i := range w.eps {
		w.crash(i)
	}
}

// seededIDs draws a node's registry identifiers from rnd: the datagrams
// that carry them, and so their fates, replay.
func seededIDs(rnd *simnet.Rand) registry.IDSource {
	var mu sync.Mutex
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		for {
			if v := rnd.Uint64(); v != 0 {
				return v
			}
		}
	}
}

// start starts node i's endpoint and its role.
func (w *regWorld) start(i int) {
	ep := openNode(w.t, w.net, w.cfg, uint32(i+1), w.addrs[i])
	var err error
	centers := []netip.AddrPort{w.addrs[regCenter0], w.addrs[regCenter1]}
	// Each start of a node draws its identifiers from its own stream, so
	// that what a crashed instance drew while it died does not shift them.
	w.boots[i]++
	ids := seededIDs(simnet.NewRand(w.seed ^ uint64(i+1)<<40 ^ w.boots[i]<<52))
	switch i {
	case regCenter0, regCenter1:
		rc := center.DefaultConfig(filepath.Join(w.dir, "center"+strconv.Itoa(i)))
		rc.Index = uint8(i)
		rc.Peer = centers[1-i]
		rc.Logger = quietLogger
		rc.Disk = w.disks[i].Boot()
		rc.IDs = ids
		if w.ctrs[i], err = center.StartCenter(ep, rc); err != nil {
			w.t.Fatal(err)
		}
	case regAgent0, regAgent1:
		ac := agent.DefaultAgentConfig(filepath.Join(w.dir, "agent"+strconv.Itoa(i)+".shm"), centers...)
		ac.Prefixes = []string{sdk.KVPrefix}
		ac.ShmSize = 1 << 20
		ac.Logger = quietLogger
		ac.IDs = ids
		if w.ags[i-regAgent0], err = agent.StartAgent(ep, ac); err != nil {
			w.t.Fatal(err)
		}
	}
	w.eps[i] = startNode(w.t, ep)
}

// crash stops node i: its endpoint first, as a process killed, then what
// ran on it; a center's disk loses first what was not synced, and the
// dying center reaches it no more.
func (w *regWorld) crash(i int) {
	if !killNode(&w.eps[i]) {
		return
	}
	switch i {
	case regCenter0, regCenter1:
		// What the center had not synced dies with it.
		w.disks[i].Crash()
		w.ctrs[i].Close()
		w.ctrs[i] = nil
	case regAgent0, regAgent1:
		w.ags[i-regAgent0].Close()
		w.ags[i-regAgent0] = nil
	}
}

// writer puts random keys until the world stops, and records the
// versions acknowledged.
func (w *regWorld) writer(i int, rnd *simnet.Rand) {
	cc := client.DefaultClientConfig(w.addrs[regCenter0], w.addrs[regCenter1])
	cc.IDs = seededIDs(simnet.NewRand(w.seed ^ uint64(i+1)<<40))
	c, err := client.NewClient(w.eps[i], cc)
	if err != nil {
		w.chk.failf("writer %d: %v", i, err)
		return
	}
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			return
		case <-time.After(rnd.Dur(100 * time.Millisecond)):
		}
		name := "k" + strconv.Itoa(int(rnd.Below(regKeys)))
		key := sdk.KVPrefix + name
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond+rnd.Dur(2*time.Second))
		var v uint64
		err := w.chk.timed(ctx, fmt.Sprintf("registry Put %s n=%d by %v", key, n, w.addrs[i]), engineTick(w.cfg), func() (err error) {
			v, err = c.Put(ctx, name, []byte(fmt.Sprintf("w%d-%d", i, n)), 0)
			return err
		})
		cancel()
		w.chk.tr.Add("put", w.addrs[i], noAddr, fmt.Sprintf("key=%s n=%d version=%d err=%v", key, n, v, err))
		if err == nil {
			w.mu.Lock()
			w.mu.acked[key] = max(w.mu.acked[key], v)
			w.mu.Unlock()
		}
		if !rnd.Chance(0.3) {
			continue
		}
		// A read, for the parked-caller check.
		name = "k" + strconv.Itoa(int(rnd.Below(regKeys)))
		ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond+rnd.Dur(time.Second))
		var e client.Entry
		err = w.chk.timed(ctx, fmt.Sprintf("registry Get %s%s n=%d by %v", sdk.KVPrefix, name, n, w.addrs[i]), engineTick(w.cfg), func() (err error) {
			e, err = c.Get(ctx, name)
			return err
		})
		cancel()
		w.chk.tr.Add("get", w.addrs[i], noAddr, fmt.Sprintf("key=%s%s n=%d version=%d err=%v", sdk.KVPrefix, name, n, e.Version, err))
	}
}

// check compares the centers with the acknowledged writes, with each
// other, and with every agent's map.
func (w *regWorld) check() {
	buf := make([]byte, 4096)
	for k := 0; k < regKeys; k++ {
		key := sdk.KVPrefix + "k" + strconv.Itoa(k)
		w.mu.Lock()
		acked := w.mu.acked[key]
		w.mu.Unlock()
		w.chk.tr.Add("check", noAddr, noAddr, fmt.Sprintf("key=%s acked=%d", key, acked))
		var vs [2]uint64
		for i, c := range w.ctrs {
			if rec, ok := c.Entry(key); ok {
				vs[i] = sdk.RecordVersion(rec)
			}
			if vs[i] < acked {
				w.chk.failf("acknowledged write lost: center %d holds %s at version %d, version %d was acknowledged", i, key, vs[i], acked)
			}
		}
		if vs[0] != vs[1] {
			w.chk.failf("centers diverge after the faults: %s at version %d and %d", key, vs[0], vs[1])
		}
		for j, a := range w.ags {
			n, err := a.Map().Get([]byte(key), buf)
			var v uint64
			if err == nil {
				v = sdk.RecordVersion(buf[:n])
			}
			if v != vs[0] {
				w.chk.failf("agent %d's map holds %s at version %d (err %v), the centers at %d", j, key, v, err, vs[0])
			}
		}
	}
}
