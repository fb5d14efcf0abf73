package campaign

import (
	"fmt"
	"math/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestKillRestart: rfcd nodes are killed with SIGKILL and restarted on the
// same address while clients keep calling them.
func TestKillRestart(t *testing.T) {
	key := keyFile(t)
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = &node{args: []string{"-addr", "127.0.0.1:0", "-key", key, "-node", fmt.Sprint(i + 1), "-log-level", "error"}}
		nodes[i].start(t)
		// Restarts reuse the port.
		nodes[i].args[1] = nodes[i].addr.String()
	}
	defer func() {
		for _, n := range nodes {
			n.kill()
		}
	}()
	// Restarts keep each node's address; callers read this copy.
	addrs := make([]netip.AddrPort, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr
	}
	cli := listenClient(t, testKey)
	var stop atomic.Bool
	log := newIncrLog()
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Go(func() {
			var rep rfc.Reply
			for i := 0; !stop.Load(); i++ {
				log.incr(cli, addrs[(g+i)%len(addrs)], builtin.CallIncr, 300*time.Millisecond, &rep)
			}
		})
	}
	rng := rand.New(rand.NewSource(3))
	kills := churn(t, rng, time.Now().Add(time.Duration(scale(3))*time.Second), [2]int{150, 200}, [2]int{50, 0},
		func(int) *node { return nodes[rng.Intn(len(nodes))] })
	stop.Store(true)
	wg.Wait()
	ok, dups, errs := log.ok, log.dups, log.errs
	for e := range errs {
		if !e.Known() {
			t.Fatalf("unknown error number %v", e)
		}
	}
	// A call run twice gives a counter value no caller sees, which the
	// log cannot find: at-most-once is TestLostReplyRunsOnce's check.
	if dups != 0 {
		t.Fatalf("%d counter values answered two calls within one incarnation", dups)
	}
	// Every node serves again after the storm.
	for _, n := range nodes {
		if err := cli.Call(rfctest.Context(t, 2*time.Second), n.addr, rfc.CallPing, nil, nil); err != nil {
			t.Fatalf("node %s after restarts: %v", n.addr, err)
		}
	}
	if ok == 0 || kills == 0 {
		t.Fatal("no load or no kills")
	}
	record(t, row{
		Fault:   "SIGKILL and restart of nodes",
		Params:  fmt.Sprintf("3 rfcd nodes, a random one killed every 150–350 ms and restarted on its port 50 ms later (%d kills)", kills),
		Load:    "16 callers, non-idempotent increments spread over the nodes, 300 ms deadlines",
		Checked: "no counter value answered two calls within one incarnation; every failure an error number (a restarted node refuses non-idempotent calls addressed to its previous incarnation with ESTALE); every node serves after the storm; client never crashed",
		Result:  fmt.Sprintf("pass: %d ok, errors: %s", ok, errnoCounts(errs)),
	})
}

// TestLossyIncrements: non-idempotent increments through a relay that
// loses, duplicates, reorders and corrupts datagrams.
func TestLossyIncrements(t *testing.T) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"checksum", nil}, {"authenticated", testKey}} {
		t.Run(mode.name, func(t *testing.T) {
			srv := listenClient(t, mode.key)
			ctr, err := builtin.Register(srv)
			if err != nil {
				t.Fatal(err)
			}
			f := simnet.Faults{Loss: 0.20, Dup: 0.05, Reorder: 0.10, ReorderBy: 5 * time.Millisecond, Corrupt: 0.01}
			relay, err := simnet.NewRelay(srv.Addr(), simnet.RelayConfig{Faults: f, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			cli := listenClient(t, mode.key)
			total := scale(5000)
			log := newIncrLog()
			var next atomic.Int64
			var wg sync.WaitGroup
			for c := 0; c < 32; c++ {
				wg.Go(func() {
					var rep rfc.Reply
					for next.Add(1) <= int64(total) {
						log.incr(cli, relay.Addr(), builtin.CallIncr, 3*time.Second, &rep)
					}
				})
			}
			wg.Wait()
			ok, errs := log.ok, log.errs
			failed := 0
			for e, n := range errs {
				if !e.Known() {
					t.Fatalf("unknown error number %v", e)
				}
				failed += n
			}
			runs := ctr.Value()
			switch {
			case ok+failed != total:
				t.Fatalf("%d ok + %d failed != %d", ok, failed, total)
			case log.dups != 0:
				t.Fatal("two successful calls saw the same counter value: a call ran twice")
			case runs < uint64(ok) || runs > uint64(ok)+uint64(errs[wire.ETIMEDOUT]):
				t.Fatalf("counter %d, successes %d, timeouts %d", runs, ok, errs[wire.ETIMEDOUT])
			}
			st := srv.Stats()
			drops := st.Drops["checksum"] + st.Drops["tag"] + st.Drops["unauthenticated"]
			if relay.C.Corrupted.Load() > 0 && drops == 0 {
				t.Fatal("corrupted datagrams were not rejected")
			}
			record(t, row{
				Fault:   "loss, duplication, reordering, corruption (" + mode.name + ")",
				Params:  "20% loss, 5% dup, 10% reordered up to 5 ms, 1% corrupted, each way",
				Load:    fmt.Sprintf("%d non-idempotent increments, 32 callers", total),
				Checked: "each success ran exactly once (distinct counter values); counter = successes + timed-out calls that ran; every failure an error number",
				Result: fmt.Sprintf("pass: %d ok, errors %v, counter %d; relay dropped %d, duplicated %d, reordered %d, corrupted %d; receiver rejected %d corrupted",
					ok, errnoCounts(errs), runs, relay.C.Dropped.Load(), relay.C.Duplicated.Load(), relay.C.Reordered.Load(), relay.C.Corrupted.Load(), drops),
			})
		})
	}
}

// TestLostReplyRunsOnce: the reply of a non-idempotent increment is lost,
// each time the callee sends it, until the callee has answered at least
// one retransmission of the request; then replies pass again. The call
// must return the value of its one run, and the counter must show one
// run: the retransmissions are answered from the duplicate-request cache,
// not run again. The test waits for events (the relay dropped two
// replies), not for time, so a callee that runs a retransmission fails it
// on every run.
func TestLostReplyRunsOnce(t *testing.T) {
	const bound = 10 * time.Second // bounds the waits of a broken run only
	cli := listenClient(t, testKey)
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (addr netip.AddrPort, counter func() uint64)
	}{
		{"endpoint", func(t *testing.T) (netip.AddrPort, func() uint64) {
			srv := listenClient(t, testKey)
			ctr, err := builtin.Register(srv)
			if err != nil {
				t.Fatal(err)
			}
			return srv.Addr(), ctr.Value
		}},
		{"rfcd", func(t *testing.T) (netip.AddrPort, func() uint64) {
			n := startNode(t, "-addr", "127.0.0.1:0", "-key", keyFile(t), "-node", "1", "-log-level", "error")
			return n.addr, func() uint64 {
				var rep rfc.Reply
				if err := cli.Call(rfctest.Context(t, 2*time.Second), n.addr, builtin.CallCounter, nil, &rep); err != nil {
					t.Fatalf("counter: %v", err)
				}
				return rep.Param(0).Uint64()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, counter := tc.start(t)
			relay, err := simnet.NewRelay(addr, simnet.RelayConfig{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			// A non-idempotent request must name the callee's
			// incarnation, which the caller learns from a reply.
			if err := cli.Call(rfctest.Context(t, bound), relay.Addr(), rfc.CallPing, nil, nil); err != nil {
				t.Fatalf("ping: %v", err)
			}
			relay.CutReplies()
			type result struct {
				err error
				v   uint64
			}
			res := make(chan result, 1)
			go func() {
				var rep rfc.Reply
				// The deadline leaves room for many
				// retransmissions; a correct run needs one.
				err := cli.Call(rfctest.Context(t, 2*bound), relay.Addr(), builtin.CallIncr, nil, &rep)
				var v uint64
				if err == nil {
					v = rep.Param(0).Uint64()
				}
				res <- result{err, v}
			}()
			if !rfctest.WaitFor(bound, func() bool { return relay.C.Dropped.Load() >= 2 }) {
				t.Fatalf("the callee never answered a retransmission: relay dropped %d replies", relay.C.Dropped.Load())
			}
			if v := counter(); v != 1 {
				t.Fatalf("counter %d after a request and its retransmission, want 1", v)
			}
			relay.Heal()
			r := <-res
			if r.err != nil || r.v != 1 {
				t.Fatalf("call: %v, value %d, want value 1", r.err, r.v)
			}
			if v := counter(); v != 1 {
				t.Fatalf("counter %d after the call returned, want 1", v)
			}
		})
	}
}
