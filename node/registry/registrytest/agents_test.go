package registrytest

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
)

// TestAwaitSyncedKey: AwaitSynced sees every agent of a pair of centers
// synced; AwaitKey reports each agent's map once when a registration
// reaches it and returns nil, and returns every index for a key no map
// holds when the time is up.
func TestAwaitSyncedKey(t *testing.T) {
	p := centertest.StartPair(t)
	dir := t.TempDir()
	const n = 3
	var ags []*agent.Agent
	for i := 0; i < n; i++ {
		cfg := agent.DefaultAgentConfig(filepath.Join(dir, "agent"+strconv.Itoa(i)+".shm"), p.Addrs()...)
		cfg.Logger = rfctest.Quiet
		a, err := agent.StartAgent(regtest.Endpoint(t, uint32(10+i), ""), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		ags = append(ags, a)
	}
	if got := AwaitSynced(ags, time.Now().Add(30*time.Second)); got != n {
		t.Fatalf("AwaitSynced = %d, want %d", got, n)
	}
	if err := ags[0].Register(rfctest.Context(t, 10*time.Second), "db", "10.0.0.1:5432", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	var held []int
	key := []byte(sdk.ServiceKey("db", 10))
	if left := AwaitKey(ags, key, time.Millisecond, time.Now().Add(30*time.Second), func(i int) { held = append(held, i) }); left != nil {
		t.Fatalf("AwaitKey: %v left", left)
	}
	slices.Sort(held)
	if !slices.Equal(held, []int{0, 1, 2}) {
		t.Fatalf("held called for %v, want each agent once", held)
	}
	left := AwaitKey(ags, []byte(sdk.ServiceKey("none", 10)), time.Millisecond, time.Now(), nil)
	if !slices.Equal(left, []int{0, 1, 2}) {
		t.Fatalf("AwaitKey of a key no map holds = %v, want every agent", left)
	}
}

// TestTimeRegistration: a registration is timed until visible holds and
// until Register returns; one never seen is an error once the bound has
// passed, after Register has returned, and a refused Register is its
// error.
func TestTimeRegistration(t *testing.T) {
	p := centertest.StartPair(t)
	reg, err := client.NewClient(regtest.Endpoint(t, 70, ""), client.DefaultClientConfig(p.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	ctx := rfctest.Context(t, 30*time.Second)
	polls := 0
	third := func() bool { polls++; return polls == 3 }
	seen, acked, err := TimeRegistration(ctx, reg, "db", third, time.Millisecond, 10*time.Second)
	if err != nil || polls != 3 || seen <= 0 || acked <= 0 {
		t.Fatalf("TimeRegistration = %v, %v, %v after %d polls, want times after 3 polls", seen, acked, err, polls)
	}
	never := func() bool { return false }
	if _, _, err := TimeRegistration(ctx, reg, "db2", never, time.Millisecond, 0); err == nil {
		t.Fatal("TimeRegistration of a registration never seen: no error")
	}
	always := func() bool { return true }
	if _, _, err := TimeRegistration(ctx, reg, "", always, time.Millisecond, 10*time.Second); err == nil {
		t.Fatal("TimeRegistration of an empty name: no error")
	}
}
