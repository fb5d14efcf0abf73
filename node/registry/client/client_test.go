package client

import (
	"context"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/wire"
)

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestClientNoSpinWhenCentersFail has both centers fail every call at
// once, declared dead or answering without running it, and checks that
// the Client waits between rounds instead of swapping centers in a busy
// loop: the process's CPU time over the call stays a small part of the
// time the call took.
func TestClientNoSpinWhenCentersFail(t *testing.T) {
	cases := []struct {
		name string
		dead bool // both centers declared dead; otherwise they answer ECLOSED
		want wire.Errno
	}{
		{"both-dead", true, wire.ENODEAD},
		{"both-fail-fast", false, wire.ECLOSED},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Closed centers answer every call ECLOSED at once.
			p := centertest.StartPair(t)
			p.Cs[0].Close()
			p.Cs[1].Close()
			ep := regtest.Endpoint(t, 7, "")
			cl := newClient(t, ep, p.Addrs()...)
			if tc.dead {
				ep.MarkDead(p.EPs[0].Addr())
				ep.MarkDead(p.EPs[1].Addr())
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			cpu0, t0 := processCPU(t), time.Now()
			_, err := cl.Get(ctx, "k")
			cpu, elapsed := processCPU(t)-cpu0, time.Since(t0)
			t.Logf("%v after %v, CPU %v", err, elapsed, cpu)
			if tc.dead && wire.AsErrno(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !tc.dead && err == nil {
				t.Fatal("call succeeded")
			}
			// Generous: a spinning call uses about one core for the
			// whole call; a small floor covers the calls themselves.
			if limit := elapsed/5 + 20*time.Millisecond; cpu > limit {
				t.Fatalf("CPU %v over %v (limit %v): the call spins", cpu, elapsed, limit)
			}
		})
	}
}
