package rfc

import (
	"context"
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
	srv := newTestServer(t, nil)
	cli := newTestEndpoint(t, nil)
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
		for i := 0; i < 2000; i++ { // warm up: slots, caches, pools
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
		per := float64(m1.Mallocs-m0.Mallocs) / n
		t.Logf("call %d: %.3f allocations per call, whole process", no, per)
		if per > 0.05 {
			t.Fatalf("call %d: %.3f allocations per call", no, per)
		}
	}
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
		var p wire.Params
		seg := make([]byte, size+64)
		var rep Reply
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.Reset(seg)
			p.Bytes(payload)
			c, cancel := ctx, context.CancelFunc(nil)
			if perCall {
				c, cancel = context.WithTimeout(ctx, 2*time.Second)
			}
			err := cli.Call(c, srv.Addr(), no, &p, &rep)
			if cancel != nil {
				cancel()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	const callers = 32
	var wg sync.WaitGroup
	per := b.N/callers + 1
	b.ResetTimer()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p wire.Params
			seg := make([]byte, size+64)
			var rep Reply
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i := 0; i < per; i++ {
				p.Reset(seg)
				p.Bytes(payload)
				c, cancel := ctx, context.CancelFunc(nil)
				if perCall {
					c, cancel = context.WithTimeout(ctx, 2*time.Second)
				}
				err := cli.Call(c, srv.Addr(), no, &p, &rep)
				if cancel != nil {
					cancel()
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
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
