package sim

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

const (
	callApply = wire.CallUserBase + 10 // not idempotent: must run at most once
	callEcho  = wire.CallUserBase + 11 // idempotent
	// applyMark is folded into apply's reply so that a reply shows which
	// call it answers.
	applyMark = 0xa5a5a5a5a5a5a5a5
)

var noAddr netip.AddrPort

// TestSimRFC is the call-engine scenario: nodes call each other with
// idempotent and non-idempotent calls, with and without a context
// deadline, while the fault schedule drops, duplicates, delays, reorders
// and corrupts datagrams, partitions links, pauses nodes and crashes and
// restarts them. Invariants: a non-idempotent call runs at most once
// across every incarnation of its callee; every caller returns by its
// deadline plus one engine tick; a successful reply is its own call's;
// once the faults stop and the network has settled, calls succeed (or
// are refused EBUSY by a full queue).
func TestSimRFC(t *testing.T) { runSeeds(t, "RFC", runRFC) }

// rfcWorld is one run of the rfc scenario.
type rfcWorld struct {
	seed  uint64
	net   *simnet.Network
	chk   *checker
	cfg   rfc.Config
	tick  time.Duration
	nodes []*rfcNode
	stop  chan struct{} // closed: the clients stop
	wg    sync.WaitGroup
	// settled is the virtual time (trace clock) from which calls must
	// succeed; zero while faults may still be under way.
	mu struct {
		sync.Mutex
		settled time.Duration
		runs    map[uint64]int // apply token -> times run
	}
}

// rfcNode is one address and its current endpoint.
type rfcNode struct {
	i    int
	addr netip.AddrPort
	gen  int
	ep   *rfc.Endpoint // nil while crashed
}

func runRFC(t *testing.T, seed uint64, chk *checker) {
	rnd := simnet.NewRand(seed)
	w := &rfcWorld{seed: seed, chk: chk, stop: make(chan struct{})}
	w.mu.runs = map[uint64]int{}
	w.net = simnet.New(seed, calm(), chk.tr)
	defer w.net.Close()
	cfg := rfc.DefaultConfig()
	cfg.MaxPending = 256
	cfg.Logger = quietLogger
	cfg.DupEntries = 4096
	cfg.Workers = 1 + int(rnd.Below(4))
	cfg.QueueLen = 4 + int(rnd.Below(64))
	cfg.DefaultTimeout = 50*time.Millisecond + rnd.Dur(2*time.Second)
	if rnd.Chance(0.3) {
		cfg.DupEntries = 16 + int(rnd.Below(64)) // eviction under pressure
	}
	if rnd.Chance(0.3) {
		cfg.Key = []byte("simulation-cluster-key")
	}
	w.cfg = cfg
	w.tick = engineTick(cfg)
	n := 3 + int(rnd.Below(3))
	for i := 0; i < n; i++ {
		nd := &rfcNode{i: i, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 7000)}
		w.nodes = append(w.nodes, nd)
	}
	chk.tr.Add("world", noAddr, noAddr, fmt.Sprintf("seed=%d nodes=%d workers=%d queue=%d dup=%d timeout=%v key=%v",
		seed, n, cfg.Workers, cfg.QueueLen, cfg.DupEntries, cfg.DefaultTimeout, cfg.Key != nil))
	for _, nd := range w.nodes {
		w.startNode(t, nd, rnd.Fork(uint64(nd.i)))
	}
	w.faults(t, rnd.Fork(1<<32))
	close(w.stop)
	w.wg.Wait()
	for _, nd := range w.nodes {
		if nd.ep != nil {
			nd.ep.Close()
		}
	}
}

// calm is the network once the faults stop: a short, jittered delay.
func calm() simnet.Faults {
	return simnet.Faults{Delay: simnet.Dist{Base: 200 * time.Microsecond, Jitter: 300 * time.Microsecond}}
}

// startNode opens a new incarnation at nd's address and starts its
// client.
func (w *rfcWorld) startNode(t *testing.T, nd *rfcNode, rnd *simnet.Rand) {
	ep := openNode(t, w.net, w.cfg, uint32(nd.i+1), nd.addr)
	addr := nd.addr
	err := ep.Register(callApply, "apply", wire.Schema{wire.TypeUint64, wire.TypeInt64}, 0, func(req *rfc.Request, reply *wire.Params) wire.Errno {
		tok := req.Param(0).Uint64()
		w.ran(addr, tok)
		if d := time.Duration(req.Param(1).Int64()); d > 0 {
			time.Sleep(d)
		}
		reply.Uint64(tok ^ applyMark)
		return wire.OK
	})
	if err == nil {
		err = ep.Register(callEcho, "echo", wire.Schema{wire.TypeUint64}, rfc.Idempotent, func(req *rfc.Request, reply *wire.Params) wire.Errno {
			reply.Uint64(req.Param(0).Uint64() + 1)
			return wire.OK
		})
	}
	if err == nil {
		err = ep.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	nd.ep = ep
	nd.gen++
	w.wg.Add(1)
	go w.client(nd.i, nd.gen, ep, rnd)
}

// ran records that the apply call tok ran at addr.
func (w *rfcWorld) ran(addr netip.AddrPort, tok uint64) {
	w.mu.Lock()
	w.mu.runs[tok]++
	k := w.mu.runs[tok]
	w.mu.Unlock()
	w.chk.tr.Add("run", addr, noAddr, fmt.Sprintf("tok=%x n=%d", tok, k))
	if k > 1 {
		w.chk.failf("apply tok=%x ran %d times (last at %v)", tok, k, addr)
	}
}

func (w *rfcWorld) runsOf(tok uint64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.runs[tok]
}

func (w *rfcWorld) settledAt() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.settled
}

// client is the one goroutine making calls from one incarnation of node
// i, until the world stops or the endpoint closes.
func (w *rfcWorld) client(i, gen int, ep *rfc.Endpoint, rnd *simnet.Rand) {
	defer w.wg.Done()
	var p wire.Params
	p.Reset(make([]byte, 64))
	var r rfc.Reply
	for seq := uint64(1); ; seq++ {
		select {
		case <-w.stop:
			return
		case <-time.After(rnd.Dur(30 * time.Millisecond)):
		}
		j := int(rnd.Below(uint64(len(w.nodes) - 1)))
		if j >= i {
			j++
		}
		dst := w.nodes[j].addr
		tok := uint64(i+1)<<48 | uint64(gen)<<32 | seq
		apply := rnd.Chance(0.6)
		useCtx := rnd.Chance(0.5)
		timeout := w.cfg.DefaultTimeout
		if useCtx {
			timeout = 20*time.Millisecond + rnd.Dur(2*time.Second)
		}
		var work time.Duration
		if apply && rnd.Chance(0.3) {
			work = rnd.Dur(min(timeout, 400*time.Millisecond))
		}
		p.Reset(p.Segment()[:cap(p.Segment())])
		callNo := uint16(callEcho)
		p.Uint64(tok)
		if apply {
			callNo = callApply
			p.Int64(int64(work))
		}
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if useCtx {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		settled := w.settledAt()
		start := w.chk.tr.Since()
		w.chk.tr.Add("call", ep.Addr(), dst, fmt.Sprintf("tok=%x apply=%v ctx=%v timeout=%v work=%v", tok, apply, useCtx, timeout, work))
		call := func() error { return ep.Call(ctx, dst, callNo, &p, &r) }
		name := fmt.Sprintf("call tok=%x to %v", tok, dst)
		var err error
		if useCtx {
			err = w.chk.timed(ctx, name, w.tick, call)
		} else {
			err = w.chk.timedUntil(name, timeout, w.tick, call)
		}
		cancel()
		el := w.chk.tr.Since() - start
		e := wire.AsErrno(err)
		var got uint64
		if err == nil {
			got = r.Param(0).Uint64()
		}
		w.chk.tr.Add("return", ep.Addr(), dst, fmt.Sprintf("tok=%x err=%v after=%v", tok, e, el))
		switch {
		case err == nil && apply && got != tok^applyMark:
			w.chk.failf("apply tok=%x got the reply %x of another call", tok, got^applyMark)
		case err == nil && !apply && got != tok+1:
			w.chk.failf("echo tok=%x got %x", tok, got)
		case err == nil && apply && w.runsOf(tok) == 0:
			w.chk.failf("apply tok=%x succeeded but never ran", tok)
		case e == wire.ECLOSED:
			return
		case err != nil && e != wire.EBUSY && settled > 0 && start > settled && timeout >= time.Second:
			// EBUSY is the callee's backpressure (a full queue behind
			// a long handler), an answer rather than a failure.
			w.chk.failf("call tok=%x to %v failed %v after the network settled", tok, dst, e)
		}
	}
}

// faults runs the fault schedule for flagTime, lifts every fault, and
// lets the world run quiet for flagQuiet.
func (w *rfcWorld) faults(t *testing.T, rnd *simnet.Rand) {
	addrs := make([]netip.AddrPort, len(w.nodes))
	for i, nd := range w.nodes {
		addrs[i] = nd.addr
	}
	s := &schedule{net: w.net, tr: w.chk.tr, rnd: rnd, addrs: addrs, log: newFaultLog(), maxDown: 3 * time.Second, links: randomFaults,
		crash: func(i int) {
			w.nodes[i].ep.Close()
			w.nodes[i].ep = nil
		},
		restart: func(i int, rnd *simnet.Rand) { w.startNode(t, w.nodes[i], rnd) },
	}
	s.run(*flagTime, calm())
	// Settled: every call started after this must succeed. A caller's
	// view of a peer (its RTO, its suspicion) needs up to MaxRTO to
	// recover, and a request queued behind a long handler up to its
	// work time.
	time.Sleep(w.cfg.MaxRTO + time.Second)
	w.mu.Lock()
	w.mu.settled = w.chk.tr.Since()
	w.mu.Unlock()
	time.Sleep(*flagQuiet)
}
