package bench

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// measureSink keeps TestMeasuredPhase's allocations on the heap.
var measureSink []*[64]byte

// TestMeasuredPhase: begin, end and wait are called in that order, and
// the allocations that the workers make until wait returns are counted.
func TestMeasuredPhase(t *testing.T) {
	var order []string
	const allocs = 100
	_, mallocs := measuredPhase(0, 0, func() { order = append(order, "begin") }, func() { order = append(order, "end") }, func() {
		order = append(order, "wait")
		for range allocs {
			measureSink = append(measureSink, new([64]byte))
		}
	})
	measureSink = nil
	if want := []string{"begin", "end", "wait"}; !slices.Equal(order, want) {
		t.Errorf("called %q, want %q", order, want)
	}
	if mallocs < allocs {
		t.Errorf("%d allocations counted, want at least %d", mallocs, allocs)
	}
}

// TestMeasureCounts: the counts are measured in order and each point is
// told to progress; a failure stops the run with the points before it.
func TestMeasureCounts(t *testing.T) {
	fail := errors.New("count 3 fails")
	measure := func(n int) (int, error) {
		if n == 3 {
			return 0, fail
		}
		return 10 * n, nil
	}
	var told []string
	progress := func(s string) { told = append(told, s) }
	say := func(n, p int) string { return fmt.Sprint(n, ":", p) }
	out, err := measureCounts([]int{1, 2, 3, 4}, measure, progress, say)
	if err != fail || !slices.Equal(out, []int{10, 20}) || !slices.Equal(told, []string{"1:10", "2:20"}) {
		t.Fatalf("measureCounts: %v, %v, told %q", out, err, told)
	}
	if out, err := measureCounts([]int{1, 2}, measure, nil, say); err != nil || !slices.Equal(out, []int{10, 20}) {
		t.Fatalf("measureCounts without progress: %v, %v", out, err)
	}
}
