package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// writeChart draws CPU per member against N (log-scaled N axis), one
// line per system and busy setting, from the JSON outputs of earlier
// runs (-json), as an SVG file.
func writeChart(out string, inputs []string) error {
	type key struct {
		sys  string
		busy int
	}
	series := map[key][]result{}
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		var doc struct {
			Scale []result `json:"scale"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %v", in, err)
		}
		for _, r := range doc.Scale {
			if r.Err == "" && r.CPUPerMemMs > 0 {
				k := key{r.System, r.Busy}
				series[k] = append(series[k], r)
			}
		}
	}
	var keys []key
	maxN, maxY := 2.0, 0.0
	for k, rs := range series {
		keys = append(keys, k)
		sort.Slice(rs, func(i, j int) bool { return rs[i].N < rs[j].N })
		for _, r := range rs {
			maxN = math.Max(maxN, float64(r.N))
			maxY = math.Max(maxY, r.CPUPerMemMs)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].sys != keys[j].sys {
			return keys[i].sys < keys[j].sys
		}
		return keys[i].busy < keys[j].busy
	})
	const w, h, x0, x1, y0, y1 = 790, 360, 70, 530, 320, 30
	minN := 8.0
	xOf := func(n float64) float64 {
		return x0 + (x1-x0)*(math.Log(n)-math.Log(minN))/(math.Log(maxN*1.25)-math.Log(minN))
	}
	top := math.Ceil(maxY*1.1*2) / 2
	yOf := func(v float64) float64 { return y0 - (y0-y1)*v/top }
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h)
	fmt.Fprintf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", w, h)
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"18\" font-size=\"14\">failure detector CPU per member against cluster size (loopback, one process)</text>\n", x0)
	fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y0, x1, y0)
	fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y1, x0, y0)
	for _, n := range []float64{16, 32, 64, 128, 256, 512, 1024} {
		if n > maxN*1.25 {
			break
		}
		x := xOf(n)
		fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, y1, x, y0)
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", x, y0+15, n)
	}
	step := top / 5
	for v := 0.0; v <= top+1e-9; v += step {
		y := yOf(v)
		fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x0, y, x1, y)
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", x0-5, y+4, v)
	}
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">members (N)</text>\n", (x0+x1)/2, y0+32)
	fmt.Fprintf(&b, "<text x=\"15\" y=\"%d\" transform=\"rotate(-90 15 %d)\" text-anchor=\"middle\">CPU ms per member per s</text>\n", (y0+y1)/2, (y0+y1)/2)
	colors := map[string]string{"fastcall": "#1f77b4", "memberlist": "#d62728"}
	for i, k := range keys {
		rs := series[k]
		c := colors[k.sys]
		if c == "" {
			c = "#555"
		}
		dash := ""
		if k.busy > 0 {
			dash = " stroke-dasharray=\"6 4\""
		}
		var pts []string
		for _, r := range rs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(float64(r.N)), yOf(r.CPUPerMemMs)))
		}
		fmt.Fprintf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>\n", c, dash, strings.Join(pts, " "))
		for _, r := range rs {
			fmt.Fprintf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", xOf(float64(r.N)), yOf(r.CPUPerMemMs), c)
		}
		ly := y1 + 10 + 18*i
		fmt.Fprintf(&b, "<line x1=\"545\" y1=\"%d\" x2=\"575\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", ly, ly, c, dash)
		label := k.sys + ", idle"
		if k.busy > 0 {
			label = fmt.Sprintf("%s, %d busy goroutines", k.sys, k.busy)
		}
		fmt.Fprintf(&b, "<text x=\"580\" y=\"%d\">%s</text>\n", ly+4, label)
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
