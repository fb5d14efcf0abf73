package center

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/registrytest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
)

// benchSetup starts a pair, an agent writing a map, and three nodes
// registering instances of service "bench".
func benchSetup(b *testing.B, policy FsyncPolicy) (*pair, *agent.Agent, *sdk.Reader, *client.Client) {
	p := startPair(b, func(i int, c *Config) { c.Fsync = policy })
	path := filepath.Join(b.TempDir(), "bench.map")
	a := startAgent(b, regtest.Endpoint(b, 50, ""), path, p.Addrs(), nil)
	for i := 0; i < 3; i++ {
		c := newClient(b, regtest.Endpoint(b, uint32(60+i), ""), p.Addrs()...)
		if _, err := c.Register(rfctest.Context(b, time.Second), "bench", fmt.Sprintf("127.0.0.1:%d", 9000+i), []byte("zone=a"), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	r := regtest.OpenMap(b, path)
	if !rfctest.WaitFor(2*time.Second, func() bool { in, _ := r.LookupDirect("bench", nil); return len(in) == 3 }) {
		b.Fatal("instances not in the map")
	}
	return p, a, r, a.Client()
}

// BenchmarkLookup compares a service lookup through the shm SDK (with its
// sequence-validated cache, and reading the map every time) with the same
// lookup as a call to a center over loopback, in one run.
func BenchmarkLookup(b *testing.B) {
	_, _, r, c := benchSetup(b, FsyncAlways)
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if in, err := r.Lookup("bench"); err != nil || len(in) != 3 {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lookups/s")
	})
	b.Run("sdk-direct", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]sdk.Instance, 0, 8)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if in, err := r.LookupDirect("bench", buf[:0]); err != nil || len(in) != 3 {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lookups/s")
	})
	b.Run("center", func(b *testing.B) {
		b.ReportAllocs()
		ctx := rfctest.Context(b, time.Minute)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if in, err := c.Lookup(ctx, "bench"); err != nil || len(in) != 3 {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lookups/s")
	})
}

// BenchmarkPropagation measures registrations, one at a time, from the
// start of the Register call:
//
//   - visible: until the instance is visible in a subscriber's map, read
//     through the SDK by a goroutine polling while the call runs (the
//     propagation time);
//   - acked: until the call returns, the registration acknowledged, and so
//     durable at both centers under FsyncAlways;
//   - both: until it is visible and acknowledged (the later of the two).
//
// It reports p50 and p99 of each, with the default policy (FsyncAlways)
// and with FsyncInterval (no fsync before the acknowledgement).
func BenchmarkPropagation(b *testing.B) {
	b.Run("fsync-always", func(b *testing.B) { benchPropagation(b, FsyncAlways) })
	b.Run("fsync-interval", func(b *testing.B) { benchPropagation(b, FsyncInterval) })
}

func benchPropagation(b *testing.B, policy FsyncPolicy) {
	p, _, r, _ := benchSetup(b, policy)
	reg := newClient(b, regtest.Endpoint(b, 70, ""), p.Addrs()...)
	ctx := rfctest.Context(b, 10*time.Minute)
	visible := make([]time.Duration, 0, b.N)
	acked := make([]time.Duration, 0, b.N)
	both := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("prop-%d", i)
		inMap := func() bool { _, err := r.Lookup(name); return err == nil }
		vis, at, err := registrytest.TimeRegistration(ctx, reg, name, inMap, 10*time.Microsecond, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		visible = append(visible, vis)
		acked = append(acked, at)
		both = append(both, max(vis, at))
	}
	b.StopTimer()
	for _, m := range [...]struct {
		name string
		lat  []time.Duration
	}{{"visible", visible}, {"acked", acked}, {"both", both}} {
		slices.Sort(m.lat)
		b.ReportMetric(float64(m.lat[len(m.lat)/2].Microseconds()), m.name+"-p50-us")
		b.ReportMetric(float64(m.lat[(len(m.lat)*99)/100].Microseconds()), m.name+"-p99-us")
	}
}
