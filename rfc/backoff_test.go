package rfc

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestBackoffSteps checks the jitter range, the doubling, the cap and
// Reset.
func TestBackoffSteps(t *testing.T) {
	b := Backoff{Min: time.Millisecond, Max: 8 * time.Millisecond}
	step := time.Millisecond
	for i := 0; i < 12; i++ {
		d := b.Next()
		if d < step/2 || d > step {
			t.Fatalf("try %d: wait %v outside [%v, %v]", i, d, step/2, step)
		}
		step = min(2*step, 8*time.Millisecond)
	}
	b.Reset()
	if d := b.Next(); d > time.Millisecond {
		t.Fatalf("after Reset: wait %v", d)
	}
}

// TestBackoffWaitEnds checks that Wait waits its step in virtual time and
// returns false at once when the context ends or stop closes.
func TestBackoffWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Min: 10 * time.Second, Max: 10 * time.Second}
		t0 := time.Now()
		if !b.Wait(context.Background(), nil) {
			t.Fatal("Wait returned false")
		}
		if d := time.Since(t0); d < 5*time.Second || d > 10*time.Second {
			t.Fatalf("waited %v", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		t0 = time.Now()
		if b.Wait(ctx, nil) {
			t.Fatal("Wait past its context returned true")
		}
		if d := time.Since(t0); d != time.Second {
			t.Fatalf("context end noticed after %v", d)
		}
		stop := make(chan struct{})
		close(stop)
		if b.Wait(context.Background(), stop) {
			t.Fatal("Wait with stop closed returned true")
		}
	})
}
