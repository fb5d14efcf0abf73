package rfc

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"fastcall/wire"
)

// TestCallAllocs asserts that a call allocates nothing in steady state,
// counting every allocation of the whole process (caller, reader, worker,
// timer goroutines) across many calls.
func TestCallAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count needs a quiet process")
	}
	srv, cli := newTestPair(t)
	ctx := context.Background()
	var p wire.Params
	seg := make([]byte, 128)
	var rep Reply
	payload := make([]byte, 64)
	for _, no := range []uint16{callEcho, callEchoW, callIncr} {
		call := func() {
			p.Reset(seg)
			if no != callIncr {
				p.Bytes(payload)
			}
			if err := cli.Call(ctx, srv.Addr(), no, &p, &rep); err != nil {
				t.Fatal(err)
			}
		}
		per := allocsPerCall(call)
		t.Logf("call %d: %.3f allocations per call, whole process", no, per)
		if per > 0.05 {
			t.Fatalf("call %d: %.3f allocations per call", no, per)
		}
	}
}

// allocsPerCall runs call a few thousand times to warm up (slots, caches,
// pools), then returns the allocations of the whole process per call over
// five thousand more.
func allocsPerCall(call func()) float64 {
	for i := 0; i < 2000; i++ {
		call()
	}
	const n = 5000
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < n; i++ {
		call()
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / n
}

func benchCall(b *testing.B, no uint16, size int, parallel bool) {
	benchCallCtx(b, no, size, parallel, false)
}

// benchCallCtx is benchCall; with perCall, every call has a
// context.WithTimeout of its own, as the services make them (its own
// allocations are counted).
func benchCallCtx(b *testing.B, no uint16, size int, parallel, perCall bool) {
	srv := newTestServer(b, nil)
	cli := newTestEndpoint(b, nil)
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	if !parallel {
		bc := newBenchCaller(cli, srv.Addr(), no, size, perCall)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := bc.call(context.Background(), payload); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	runCallers(b, 32, func(per int) {
		bc := newBenchCaller(cli, srv.Addr(), no, size, perCall)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := 0; i < per; i++ {
			if err := bc.call(ctx, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchCaller is one caller of benchCallCtx, with its own parameter
// buffer and reply.
type benchCaller struct {
	cli     *Endpoint
	dst     netip.AddrPort
	no      uint16
	perCall bool
	p       wire.Params
	seg     []byte
	rep     Reply
}

func newBenchCaller(cli *Endpoint, dst netip.AddrPort, no uint16, size int, perCall bool) *benchCaller {
	return &benchCaller{cli: cli, dst: dst, no: no, perCall: perCall, seg: make([]byte, size+64)}
}

// call makes one call with payload as its parameter, under ctx or, with
// perCall, under a 2 s deadline of its own derived from ctx.
func (c *benchCaller) call(ctx context.Context, payload []byte) error {
	c.p.Reset(c.seg)
	c.p.Bytes(payload)
	if c.perCall {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	return c.cli.Call(ctx, c.dst, c.no, &c.p, &c.rep)
}

// runCallers resets the timer, starts callers goroutines that each run
// body for b.N/callers+1 calls, and waits for them.
func runCallers(b *testing.B, callers int, body func(per int)) {
	var wg sync.WaitGroup
	per := b.N/callers + 1
	b.ResetTimer()
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(per)
		}()
	}
	wg.Wait()
}

func BenchmarkCallInline64(b *testing.B)    { benchCall(b, callEcho, 64, false) }
func BenchmarkCallWorker64(b *testing.B)    { benchCall(b, callEchoW, 64, false) }
func BenchmarkCallInline64x32(b *testing.B) { benchCall(b, callEcho, 64, true) }
func BenchmarkCallWorker64x32(b *testing.B) { benchCall(b, callEchoW, 64, true) }
func BenchmarkCallInline1K(b *testing.B)    { benchCall(b, callEcho, 1024, false) }

func BenchmarkCallInline64Deadline(b *testing.B)    { benchCallCtx(b, callEcho, 64, false, true) }
func BenchmarkCallInline64x32Deadline(b *testing.B) { benchCallCtx(b, callEcho, 64, true, true) }
