package registry

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry/sdk"
)

// stepClock is a Clock whose wall and monotonic readings the test moves
// apart: wall starts at the host's wall clock, mono at 1 s.
type stepClock struct{ wall, mono atomic.Int64 }

func newStepClock() *stepClock {
	c := &stepClock{}
	c.wall.Store(time.Now().UnixMilli())
	c.mono.Store(int64(time.Second))
	return c
}

func (c *stepClock) WallMs() int64            { return c.wall.Load() }
func (c *stepClock) MonoNs() int64            { return c.mono.Load() }
func (c *stepClock) stepWall(d time.Duration) { c.wall.Add(d.Milliseconds()) }
func (c *stepClock) stepMono(d time.Duration) { c.mono.Add(int64(d)) }

// entryKind is the kind of the center's record of key, -1 if unknown.
func entryKind(c *Center, key string) int {
	rec, ok := c.Entry(key)
	if !ok {
		return -1
	}
	return int(sdk.RecordKind(rec))
}

// TestLeaseIgnoresWallClockSteps: lease deadlines follow the monotonic
// clock. A forward step of the wall clock far past a lease expires
// nothing; a backward step does not keep an instance alive once its lease
// has run out on the monotonic clock.
func TestLeaseIgnoresWallClockSteps(t *testing.T) {
	cases := []struct {
		name       string
		wall, mono time.Duration // steps after the registration (lease 1s)
		want       uint8
	}{
		{"wall-forward", time.Hour, 0, sdk.KindService},
		{"wall-back-lease-over", -time.Hour, 2 * time.Second, sdk.KindTombstone},
		{"lease-running", 0, 500 * time.Millisecond, sdk.KindService},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newStepClock()
			ep := newEndpoint(t, 100, "")
			cfg := testCenterConfig(t.TempDir(), 0, netip.AddrPort{})
			cfg.Clock = clk
			c, err := StartCenter(ep, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			cl := newClient(t, newEndpoint(t, 7, ""), ep.Addr())
			if _, err := cl.Register(ctxFor(t, 10*time.Second), "db", "10.0.0.1:5432", nil, time.Second); err != nil {
				t.Fatal(err)
			}
			key := sdk.ServiceKey("db", 7)
			clk.stepWall(tc.wall)
			clk.stepMono(tc.mono)
			c.sweep()
			if tc.want == sdk.KindTombstone {
				// A sweep of the maintenance loop may hold the write.
				waitFor(2*time.Second, func() bool { return entryKind(c, key) == int(sdk.KindTombstone) })
			}
			if k := entryKind(c, key); k != int(tc.want) {
				t.Fatalf("wall %v, monotonic %v after a 1s lease: kind %d, want %d", tc.wall, tc.mono, k, tc.want)
			}
		})
	}
}
