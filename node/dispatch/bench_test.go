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

// BenchmarkFanoutVsSerial measures the fan-out figures of
// docs/DISPATCH.md: 100 targets whose handler takes 10 ms, dispatched in
// parallel (best of 5) and called in a serial loop, and 1,000 targets in
// parallel (best of 3). It reports each as a metric and the ratio of
// serial to parallel; run it without -race for the figures:
//
//	go test -run '^$' -bench FanoutVsSerial -benchtime 1x ./node/dispatch
func BenchmarkFanoutVsSerial(b *testing.B) {
	ts := startTargets(b, 1000)
	ep := newEP(b, 1, nil)
	d := newDispatcher(b, ep, NewMemStore(0), nil)
	hundred := &targets{eps: ts.eps[:100]}
	fanoutOnce(b, d, hundred) // warm up peers and buffers
	b.ResetTimer()
	var par100, ser100, par1000 time.Duration
	for i := 0; i < b.N; i++ {
		par100 = best(b, 5, func() time.Duration { return fanoutOnce(b, d, hundred) })
		ser100 = serialOnce(b, ep, hundred)
		par1000 = best(b, 3, func() time.Duration { return fanoutOnce(b, d, ts) })
	}
	b.ReportMetric(float64(par100.Microseconds())/1000, "ms-par100")
	b.ReportMetric(float64(ser100.Microseconds())/1000, "ms-ser100")
	b.ReportMetric(float64(par1000.Microseconds())/1000, "ms-par1000")
	b.ReportMetric(float64(ser100)/float64(par100), "ratio")
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
