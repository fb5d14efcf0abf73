package dispatch

import (
	"context"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// handlerMs is the target handler's run time in the measurements.
const handlerMs = 10

// fanoutOnce dispatches one operation of a handlerMs call to addrs and
// returns the time from Submit to Wait's return.
func fanoutOnce(tb testing.TB, d *Dispatcher, ts *targets) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	id, err := d.Submit(ctx, opFor("bench/fanout", KindUpdate, workCall(handlerMs), ts.addrs(), 5*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	st, err := d.Wait(ctx, id)
	took := time.Since(start)
	if err != nil || st.Failed != 0 || st.Done != len(ts.eps) {
		byErrno := map[wire.Errno]int{}
		for _, o := range st.Outcomes {
			byErrno[o.Errno]++
		}
		tb.Fatalf("%d done, %d failed %v: %v", st.Done, st.Failed, byErrno, err)
	}
	return took
}

// serialOnce calls every target in turn, waiting for each reply.
func serialOnce(tb testing.TB, ep *rfc.Endpoint, ts *targets) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p wire.Params
	p.Reset(make([]byte, 32))
	start := time.Now()
	for _, a := range ts.addrs() {
		p.Reset(make([]byte, 32))
		p.Int64(handlerMs)
		if err := ep.Call(ctx, a, callWork, &p, nil); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

func best(tb testing.TB, rounds int, f func() time.Duration) time.Duration {
	var m time.Duration
	for i := 0; i < rounds; i++ {
		if d := f(); i == 0 || d < m {
			m = d
		}
	}
	return m
}

// TestMeasureFanout logs the fan-out figures of docs/DISPATCH.md: 100
// targets whose handler takes 10 ms, dispatched in parallel and called in
// a serial loop, and 1,000 targets in parallel. Run it without -race for
// the figures; it is skipped under -race.
func TestMeasureFanout(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing measurement: run without -race and -short")
	}
	ts := startTargets(t, 1000)
	ep := newEP(t, 1, nil)
	d := newDispatcher(t, ep, NewMemStore(0), nil)
	hundred := &targets{eps: ts.eps[:100]}
	fanoutOnce(t, d, hundred) // warm up peers and buffers
	par100 := best(t, 5, func() time.Duration { return fanoutOnce(t, d, hundred) })
	ser100 := serialOnce(t, ep, hundred)
	par1000 := best(t, 3, func() time.Duration { return fanoutOnce(t, d, ts) })
	ratio := float64(ser100) / float64(par100)
	t.Logf("10 ms handler: 100 targets parallel %v (best of 5), serial %v, ratio %.1fx; 1000 targets parallel %v (best of 3)",
		par100.Round(100*time.Microsecond), ser100.Round(time.Millisecond), ratio, par1000.Round(100*time.Microsecond))
	if ratio < 5 {
		t.Fatalf("parallel dispatch only %.1fx faster than the serial loop", ratio)
	}
}

func benchTargets(b *testing.B, n int) (*Dispatcher, *rfc.Endpoint, *targets) {
	ts := startTargets(b, n)
	ep := newEP(b, 1, nil)
	d := newDispatcher(b, ep, NewMemStore(0), nil)
	fanoutOnce(b, d, ts)
	return d, ep, ts
}

func benchFanout(b *testing.B, n int) {
	d, _, ts := benchTargets(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += fanoutOnce(b, d, ts)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/op-wall")
}

// BenchmarkFanout100 is one operation to 100 targets whose handler takes
// 10 ms, Submit to Wait.
func BenchmarkFanout100(b *testing.B) { benchFanout(b, 100) }

// BenchmarkFanout1000 is the same with 1,000 targets.
func BenchmarkFanout1000(b *testing.B) { benchFanout(b, 1000) }

// BenchmarkSerial100 calls the same 100 targets one after another.
func BenchmarkSerial100(b *testing.B) {
	_, ep, ts := benchTargets(b, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serialOnce(b, ep, ts)
	}
}
