package client

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
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

// TestWriteRetryAfterStale: the engine answers ESTALE for a call that ran
// (a retransmission below the duplicate cache's floor, its reply evicted
// early) or may still run (a first-contact refusal that arrives after the
// center raised its incarnation). Here a fake center applies the first
// attempt of a CAS and answers it ESTALE. The client sends the write
// again at once with the same operation id: a center whose operation
// table holds it answers the version it made, applied once; one whose
// table forgot it (a minute, or 65536 operations, later) fails the
// condition, and the client reports ETIMEDOUT, the outcome unknown, not
// ECONFLICT, which says the key was not written. Before, an ESTALE did
// not count as an attempt that may have been applied, and the client
// reported ECONFLICT for a CAS that had written the key.
func TestWriteRetryAfterStale(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remember bool // the operation table holds the first attempt's operation
		version  uint64
		want     wire.Errno
	}{
		{"op remembered", true, 1, wire.OK},
		{"op forgotten", false, 0, wire.ETIMEDOUT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var ops []sdk.OpID
			version, applied := uint64(0), 0
			fake := regtest.Endpoint(t, 100, "")
			err := fake.RegisterCalls([]rfc.CallSpec{{No: registry.CallPut, Name: "reg-put", Schema: registry.SchemaPut,
				H: func(req *rfc.Request, rep *wire.Params) wire.Errno {
					mu.Lock()
					defer mu.Unlock()
					op := registry.OpOf(req)
					ops = append(ops, op)
					if len(ops) > 1 && ops[0] == op && tc.remember {
						rep.Uint64(version)
						return wire.OK
					}
					if expect := req.Param(2).Uint64(); expect != version {
						return wire.ECONFLICT
					}
					version++
					applied++
					if len(ops) == 1 {
						return wire.ESTALE // applied, its answer lost
					}
					rep.Uint64(version)
					return wire.OK
				}}})
			if err != nil {
				t.Fatal(err)
			}
			cl := newClient(t, regtest.Endpoint(t, 7, ""), fake.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := cl.CAS(ctx, "k", 0, []byte("v"), 0)
			mu.Lock()
			defer mu.Unlock()
			t.Logf("CAS: %d, %v; attempts %v, applied %d", v, err, ops, applied)
			if wire.AsErrno(err) != tc.want || v != tc.version {
				t.Errorf("CAS after an ESTALE that applied it: %d, %v; want %d, %v", v, err, tc.version, tc.want)
			}
			if applied != 1 {
				t.Errorf("applied %d times, want once", applied)
			}
			for _, op := range ops[1:] {
				if op != ops[0] {
					t.Errorf("attempts named operations %v, want one", ops)
				}
			}
		})
	}
}
