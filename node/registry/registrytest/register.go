package registrytest

import (
	"context"
	"fmt"
	"time"

	"fastcall/node/registry/client"
)

// TimeRegistration registers an instance of name (at 127.0.0.1:1, with a
// lease of a minute) through reg, and times it from the start of the
// call: until visible reports the instance seen (polled every poll) and
// until Register returns, acknowledged. err is Register's error, or, when
// visible has not held bound after the start, an error that says so
// (returned once Register has returned). The registration's propagation
// is timed with it: a subscriber's map read through the SDK, polled while
// the call runs.
func TimeRegistration(ctx context.Context, reg *client.Client, name string, visible func() bool, poll, bound time.Duration) (seen, acked time.Duration, err error) {
	type ack struct {
		at  time.Duration
		err error
	}
	done := make(chan ack, 1)
	start := time.Now()
	go func() {
		_, err := reg.Register(ctx, name, "127.0.0.1:1", nil, time.Minute)
		done <- ack{time.Since(start), err}
	}()
	for !visible() {
		if time.Since(start) > bound {
			<-done
			return 0, 0, fmt.Errorf("%s not visible %v after the start of Register", name, bound)
		}
		time.Sleep(poll)
	}
	seen = time.Since(start)
	a := <-done
	return seen, a.at, a.err
}
