package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

func cmdPing(args []string, stdout, stderr io.Writer) int {
	c := newCommand("ping", "ADDR", stderr, withClient)
	count := c.fs.Int("c", 5, "number of pings")
	interval := c.fs.Duration("i", 200*time.Millisecond, "interval between pings")
	c.json("print the summary as JSON")
	pos, code, ok := c.parse(args, func(pos []string) bool { return len(pos) == 1 && *count >= 1 && *interval >= 0 },
		"want ADDR, -c >= 1, -i >= 0")
	if !ok {
		return code
	}
	s, code := c.dial(pos[0])
	if code != 0 {
		return code
	}
	defer s.close()
	asJSON, cf, ep, dst := c.asJSON, c.cf, s.ep, s.dst
	var rtts []time.Duration
	lost := 0
	for i := 0; i < *count; i++ {
		if i > 0 {
			time.Sleep(*interval)
		}
		ctx, cancel := cf.ctx()
		start := time.Now()
		err := ep.Call(ctx, dst, rfc.CallPing, nil, nil)
		rtt := time.Since(start)
		cancel()
		if err != nil {
			lost++
			if !*asJSON {
				fmt.Fprintf(stdout, "seq=%d %s\n", i, wire.AsErrno(err).String())
			}
			continue
		}
		rtts = append(rtts, rtt)
		if !*asJSON {
			fmt.Fprintf(stdout, "seq=%d time=%s\n", i, fmtDur(rtt))
		}
	}
	sort.Slice(rtts, func(a, b int) bool { return rtts[a] < rtts[b] })
	var sum time.Duration
	for _, r := range rtts {
		sum += r
	}
	pct := func(q float64) time.Duration { return percentile(rtts, q) }
	var avg time.Duration
	if len(rtts) > 0 {
		avg = sum / time.Duration(len(rtts))
	}
	if *asJSON {
		printJSON(stdout, map[string]any{"sent": *count, "received": len(rtts), "lost": lost,
			"min_us": pct(0).Microseconds(), "avg_us": avg.Microseconds(), "max_us": pct(1).Microseconds(), "p99_us": pct(0.99).Microseconds()})
	} else {
		fmt.Fprintf(stdout, "--- %s ping statistics ---\n%d sent, %d received, %.0f%% lost\n", dst, *count, len(rtts), 100*float64(lost)/float64(*count))
		if len(rtts) > 0 {
			fmt.Fprintf(stdout, "rtt min/avg/max/p99 = %s/%s/%s/%s\n", fmtDur(pct(0)), fmtDur(avg), fmtDur(pct(1)), fmtDur(pct(0.99)))
		}
	}
	if lost > 0 {
		return 1
	}
	return 0
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the nearest
// rank: the smallest value at or above a fraction q of the values; 0 for
// no values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}
