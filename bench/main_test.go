package bench

import (
	"os"
	"testing"
)

// TestMain lets the tests start server children: a child is this test
// binary re-executed with the job in its environment.
func TestMain(m *testing.M) {
	if ChildMain() {
		return
	}
	os.Exit(m.Run())
}
