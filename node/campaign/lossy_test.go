package campaign

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
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

func quietConfig(key []byte) rfc.Config {
	cfg := rfc.DefaultConfig()
	cfg.Key = key
	cfg.Logger = quietLogger()
	return cfg
}

// TestLossyIncrements: non-idempotent increments through a relay that
// loses, duplicates, reorders and corrupts datagrams.
func TestLossyIncrements(t *testing.T) {
	for _, mode := range []struct {
		name string
		key  []byte
	}{{"checksum", nil}, {"authenticated", testKey}} {
		t.Run(mode.name, func(t *testing.T) {
			srv, err := rfc.Listen(quietConfig(mode.key))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
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
			cli, err := rfc.Listen(quietConfig(mode.key))
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			total := scale(5000)
			var next, ok atomic.Int64
			var mu sync.Mutex
			errs := map[wire.Errno]int{}
			seen := map[uint64]bool{}
			dup := false
			var wg sync.WaitGroup
			for c := 0; c < 32; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var rep rfc.Reply
					for next.Add(1) <= int64(total) {
						ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
						err := cli.Call(ctx, relay.Addr(), builtin.CallIncr, nil, &rep)
						cancel()
						mu.Lock()
						if err != nil {
							errs[wire.AsErrno(err)]++
						} else {
							ok.Add(1)
							v := rep.Param(0).Uint64()
							if seen[v] {
								dup = true
							}
							seen[v] = true
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			failed := 0
			for e, n := range errs {
				if !e.Known() {
					t.Fatalf("unknown error number %v", e)
				}
				failed += n
			}
			runs := ctr.Value()
			switch {
			case int(ok.Load())+failed != total:
				t.Fatalf("%d ok + %d failed != %d", ok.Load(), failed, total)
			case dup:
				t.Fatal("two successful calls saw the same counter value: a call ran twice")
			case runs < uint64(ok.Load()) || runs > uint64(ok.Load())+uint64(errs[wire.ETIMEDOUT]):
				t.Fatalf("counter %d, successes %d, timeouts %d", runs, ok.Load(), errs[wire.ETIMEDOUT])
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
					ok.Load(), errnoCounts(errs), runs, relay.C.Dropped.Load(), relay.C.Duplicated.Load(), relay.C.Reordered.Load(), relay.C.Corrupted.Load(), drops),
			})
		})
	}
}
