package bench

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// TestLogTicks: the ticks of a log axis are 1, 2 and 5 times the powers
// of ten inside the axis's range, its ends included, in ascending order.
func TestLogTicks(t *testing.T) {
	ticks := func(lo, hi float64) (v []float64) {
		logTicks(math.Log10(lo), math.Log10(hi), func(x float64) { v = append(v, x) })
		return v
	}
	if got, want := ticks(150, 2500), []float64{200, 500, 1000, 2000}; !slices.Equal(got, want) {
		t.Errorf("ticks of 150..2500: %v, want %v", got, want)
	}
	if got, want := ticks(1e3, 1e5), []float64{1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5}; !slices.Equal(got, want) {
		t.Errorf("ticks of 1e3..1e5: %v, want %v", got, want)
	}
	if got := ticks(3, 4); got != nil {
		t.Errorf("ticks of 3..4: %v, want none", got)
	}
}

// TestScaleViewsNotCounted: a scale row whose views the program did not
// count (NotAlive -1) says "not counted", not "-1/N", which reads as a
// count; a counted row shows not alive of all views.
func TestScaleViewsNotCounted(t *testing.T) {
	var b strings.Builder
	WriteScaleMarkdown(&b, []ScaleResult{
		{System: "memberlist", N: 256, NotAlive: -1, Views: 65280},
		{System: "fastcall", N: 256, NotAlive: 0, Views: 65280},
	})
	out := b.String()
	if strings.Contains(out, "-1/") || !strings.Contains(out, "| not counted |") || !strings.Contains(out, "| 0/65280 |") {
		t.Errorf("scale table:\n%s\nwant \"not counted\" for the uncounted row and 0/65280 for the other", out)
	}
}
