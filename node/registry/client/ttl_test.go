package client

import (
	"context"
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/wire"
)

// TestPutSubMillisecondTTL: the center counts a time to live in whole
// milliseconds and reads 0 as none. A Put or CAS with a positive ttl
// below a millisecond writes an entry that expires (gone, or read with an
// expiry), never one that lives forever.
func TestPutSubMillisecondTTL(t *testing.T) {
	s := centertest.StartSingle(1)
	defer s.Close()
	cl := newClient(t, regtest.Endpoint(t, 7, ""), s.Addr())
	cases := []struct {
		name string
		ttl  time.Duration
		cas  bool
	}{
		{"put-1ns", time.Nanosecond, false},
		{"put-500us", 500 * time.Microsecond, false},
		{"cas-999us", 999 * time.Microsecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			if tc.cas {
				_, err = cl.CAS(ctx, tc.name, 0, []byte("v"), tc.ttl)
			} else {
				_, err = cl.Put(ctx, tc.name, []byte("v"), tc.ttl)
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			e, err := cl.Get(ctx, tc.name)
			switch {
			case wire.AsErrno(err) == wire.ENOENT:
			case err != nil:
				t.Fatalf("get: %v", err)
			case e.ExpireMs == 0:
				t.Fatalf("ttl %v: entry written without an expiry: it never expires", tc.ttl)
			}
		})
	}
}
