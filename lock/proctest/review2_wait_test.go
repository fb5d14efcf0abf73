package proctest

import (
	"fmt"
	"testing"
	"time"
)

// review2BurstLines is how many lines the burst role prints before it
// exits.
const review2BurstLines = 3000

// review2Burst prints review2BurstLines lines and exits at once.
func review2Burst() int {
	for i := 0; i < review2BurstLines; i++ {
		fmt.Printf("line %d\n", i)
	}
	return 0
}

// TestReview2WaitKeepsLines: every line a child printed before it exited
// reaches Lines, also when the test reaps the child with Wait before
// reading them. Wait used to call exec.Cmd.Wait at once, which closes the
// stdout pipe as soon as the child has exited: the lines still in the pipe
// were lost and Lines closed early.
func TestReview2WaitKeepsLines(t *testing.T) {
	for round := 0; round < 5; round++ {
		c := Start(t, "burst")
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		n := 0
		end := time.After(waitDeadline)
	read:
		for {
			select {
			case _, ok := <-c.Lines:
				if !ok {
					break read
				}
				n++
			case <-end:
				t.Fatal("Lines not closed")
			}
		}
		if n != review2BurstLines {
			t.Fatalf("round %d: %d lines after Wait, want %d", round, n, review2BurstLines)
		}
	}
}
