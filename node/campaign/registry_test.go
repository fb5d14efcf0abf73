package campaign

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry/client"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestRegistryCentersKilled writes key/value entries through a client
// while the two registry centers are killed with SIGKILL and restarted in
// turn. Every write that returned success must be on both centers at the
// end, with its value.
func TestRegistryCentersKilled(t *testing.T) {
	key := keyFile(t)
	dir := t.TempDir()
	addrs := rfctest.FreeAddrs(t, 2) // fixed ports: configurations name the peer
	centers := make([]*node, 2)
	for i := range centers {
		centers[i] = startConfig(t, fmt.Sprintf("c%d.json", i), fmt.Sprintf(`{"addr": %q, "node": %d, "key_file": %q, "log_level": "error", "roles": ["center"],
			"center": {"data_dir": %q, "peer": %q, "index": %d},
			"heartbeat": {"members": [%q], "interval": "50ms"}}`,
			addrs[i], 70+i, key, filepath.Join(dir, fmt.Sprintf("data%d", i)), addrs[1-i], i, addrs[1-i]))
	}
	ep := listenClient(t, testKey)
	cs := []netip.AddrPort{netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1])}
	cli, err := client.NewClient(ep, client.DefaultClientConfig(cs...))
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var mu sync.Mutex
	acked := map[string]string{}
	errs := map[wire.Errno]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := fmt.Sprintf("campaign/%d/%d", g, i)
				v := fmt.Sprintf("v%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cli.Put(ctx, k, []byte(v), 0)
				cancel()
				mu.Lock()
				if err == nil {
					acked[k] = v
				} else {
					errs[wire.AsErrno(err)]++
				}
				mu.Unlock()
			}
		}(g)
	}
	rng := rand.New(rand.NewSource(11))
	kills := churn(t, rng, time.Now().Add(time.Duration(scale(4))*time.Second), [2]int{400, 400}, [2]int{200, 300},
		func(kills int) *node { return centers[kills%2] })
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	for e := range errs {
		if !e.Known() {
			t.Fatalf("unknown error number %v", e)
		}
	}
	// Both centers converge; check each one alone.
	missing := 0
	for i, c := range cs {
		one, err := client.NewClient(ep, client.DefaultClientConfig(c))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			missing = 0
			for k, v := range acked {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				e, err := one.Get(ctx, k)
				cancel()
				if err != nil || string(e.Value) != v {
					missing++
				}
			}
			if missing == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if missing != 0 {
			t.Fatalf("center %d (%s): %d of %d acknowledged writes missing", i, c, missing, len(acked))
		}
	}
	if len(acked) == 0 || kills == 0 {
		t.Fatal("no writes acknowledged or no kills")
	}
	record(t, row{
		Fault:   "SIGKILL of registry centers",
		Params:  fmt.Sprintf("two centers (fsync before acknowledging), killed in turn every 0.4–0.8 s and restarted 0.2–0.5 s later (%d kills)", kills),
		Load:    "4 writers putting new keys through a client that fails over between the centers",
		Checked: "every acknowledged write present with its value on each center alone after the storm",
		Result:  fmt.Sprintf("pass: %d acknowledged, all present on both; refused: %s", len(acked), errnoCounts(errs)),
	})
}
