package rfc

import (
	"context"
	"testing"
	"time"

	"fastcall/wire"
)

// TestContextErrno: a context that ended by its deadline is ETIMEDOUT,
// one cancelled before it (or with none) ECANCELED.
func TestContextErrno(t *testing.T) {
	past, cancelPast := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancelPast()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	early, cancelEarly := context.WithTimeout(context.Background(), time.Hour)
	cancelEarly()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want wire.Errno
	}{
		{"deadline passed", past, wire.ETIMEDOUT},
		{"cancelled", cancelled, wire.ECANCELED},
		{"cancelled before its deadline", early, wire.ECANCELED},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ContextErrno(c.ctx.Err()); got != c.want {
				t.Fatalf("ContextErrno(%v) = %v, want %v", c.ctx.Err(), got, c.want)
			}
		})
	}
}
