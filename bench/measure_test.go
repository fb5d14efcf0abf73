package bench

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

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
