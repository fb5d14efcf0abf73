package proctest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// review2LongLine prints a line longer than any pipe and line buffer,
// then a short one, and exits.
func review2LongLine() int {
	fmt.Println(strings.Repeat("x", 512<<10))
	fmt.Println("after")
	return 0
}

// TestReview2LongLineNoHang: a child that prints a line too long for the
// line reader is still read to its end: the line is dropped, the lines
// after it arrive, and the child exits. readLines used to stop at the
// long line (bufio.Scanner's token limit) and read no more, so the child
// blocked writing into the full pipe and never exited.
func TestReview2LongLineNoHang(t *testing.T) {
	c := Start(t, "longline")
	if line, ok := c.Next("after", waitDeadline); !ok || line != "after" {
		t.Errorf("line after the long one: %q %v", line, ok)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child: %v", err)
		}
	case <-time.After(waitDeadline):
		_ = c.Cmd.Process.Kill()
		<-done
		t.Fatal("the child never exited")
	}
}
