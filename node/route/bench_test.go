package route

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// BenchmarkCall compares a namespace get sent straight to the active
// member with the same get sent through the router (auditing on), one
// caller, on loopback. The two alternate call by call, so that both see
// the same machine; it reports the median and 99th percentile round trip
// of each and the ratio of the medians.
//
//	go test -run '^$' -bench 'Call|Audit' -benchtime 20000x ./node/route
func BenchmarkCall(b *testing.B) {
	tc := newTestCluster(b, nil)
	if _, err := tc.put(b, "/c1/bench", make([]byte, 64)); err != nil {
		b.Fatal(err)
	}
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.String("/c1/bench")
	var rep rfc.Reply
	ctx := context.Background()
	dsts := [2]netip.AddrPort{tc.meps[0].Addr(), tc.rep.Addr()}
	var lat [2][]time.Duration
	for k := range lat {
		lat[k] = make([]time.Duration, 0, b.N)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, dst := range dsts {
			t0 := time.Now()
			if err := tc.client.Call(ctx, dst, CallNSGet, &ps, &rep); err != nil {
				b.Fatal(err)
			}
			lat[k] = append(lat[k], time.Since(t0))
		}
	}
	b.StopTimer()
	tc.router.Flush(time.Second)
	var p50 [2]float64
	for k, name := range []string{"direct", "routed"} {
		l := lat[k]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		p50[k] = float64(l[len(l)/2].Nanoseconds()) / 1000
		b.ReportMetric(p50[k], name+"-p50-µs")
		b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds())/1000, name+"-p99-µs")
	}
	b.ReportMetric(p50[1]/p50[0], "p50-ratio")
	b.ReportMetric(float64(tc.router.AuditStats().Dropped), "audit-dropped")
}

// resolvePath is a path a benchmark resolves and the answer it expects.
type resolvePath struct {
	name  string
	path  []byte
	errno wire.Errno
}

// benchResolve resolves each path b.N times in mt and reports each one's
// ns per resolution and the ratio of each but the first to the first's.
func benchResolve(b *testing.B, mt *mountTable, paths []resolvePath) {
	ns := make([]float64, len(paths))
	b.ResetTimer()
	for k, p := range paths {
		t0 := time.Now()
		for i := 0; i < b.N; i++ {
			if _, e := mt.resolve(p.path); e != p.errno {
				b.Fatalf("%s: %v, want %v", p.name, e, p.errno)
			}
		}
		ns[k] = float64(time.Since(t0).Nanoseconds()) / float64(b.N)
		b.ReportMetric(ns[k], p.name+"-ns")
	}
	for k := 1; k < len(paths); k++ {
		b.ReportMetric(ns[k]/ns[0], paths[k].name+"-ratio")
	}
}

// benchTable is a snapshot of mounts, each naming a sub-cluster of its own.
func benchTable(mounts map[string]string) *mountTable {
	clusters := map[string]*clusterState{}
	for _, c := range mounts {
		clusters[c] = &clusterState{name: c}
	}
	return newMountTable(mounts, clusters)
}

// BenchmarkLongPathRefused compares the resolution of a routed call's
// path past MaxPathLen (1,379 bytes of one-letter components, refused
// EINVAL) and of a path of exactly MaxPathLen bytes of such components
// with that of a normal path, against a table of a few mounts. It
// reports each one's ns per resolution and their ratios to the normal
// path's.
//
//	go test -run '^$' -bench LongPathRefused ./node/route
func BenchmarkLongPathRefused(b *testing.B) {
	mt := benchTable(map[string]string{"/c1": "c1", "/c2/data": "c2", "/c3/x/y": "c3"})
	benchResolve(b, mt, []resolvePath{
		{"normal", []byte("/c1/bench"), wire.OK},
		{"at-max", []byte(strings.Repeat("/a", MaxPathLen/2)), wire.ENOENT},
		{"too-long", []byte("/" + strings.Repeat("a/", 689)), wire.EINVAL},
	})
}

// BenchmarkLongMount resolves paths against a table one of whose mount
// prefixes is long (1,022 bytes of one-letter components, as an operator
// may write up to MaxPathLen): a normal path, a path of MaxPathLen bytes
// under the long mount, and one of MaxPathLen bytes of one-letter
// components that shares no component with it. It reports each one's ns
// per resolution and their ratios to the normal path's.
//
//	go test -run '^$' -bench LongMount ./node/route
func BenchmarkLongMount(b *testing.B) {
	long := strings.Repeat("/b", (MaxPathLen-2)/2)
	mt := benchTable(map[string]string{"/c1": "c1", "/c2/data": "c2", long: "c3"})
	benchResolve(b, mt, []resolvePath{
		{"normal", []byte("/c1/bench"), wire.OK},
		{"under-long", []byte(long + "/x"), wire.OK},
		{"beside-long", []byte(strings.Repeat("/a", MaxPathLen/2)), wire.ENOENT},
	})
}
