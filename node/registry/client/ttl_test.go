package client

import (
	"context"
	"testing"
	"time"

	"fastcall/wire"
)

// TestPutSubMillisecondTTL: the center counts a time to live in whole
// milliseconds and reads 0 as none. A Put or CAS with a positive ttl
// below a millisecond writes an entry that expires (gone, or read with an
// expiry), never one that lives forever.
func TestPutSubMillisecondTTL(t *testing.T) {
	cl := singleClient(t)
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

// TestRegisterSubMillisecondLease: the center reads a lease of 0 ms as
// its default (seconds). A Register with a positive lease below a
// millisecond is leased for 1 ms, not the default; a negative lease is
// EINVAL, not the default either.
func TestRegisterSubMillisecondLease(t *testing.T) {
	cl := singleClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Register(ctx, "neg", "127.0.0.1:1", nil, -time.Nanosecond); wire.AsErrno(err) != wire.EINVAL {
		t.Fatalf("lease -1ns: %v, want EINVAL", err)
	}
	if _, err := cl.Register(ctx, "short", "127.0.0.1:1", nil, 500*time.Microsecond); err != nil {
		t.Fatalf("register: %v", err)
	}
	ins, err := cl.Lookup(ctx, "short")
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	for _, in := range ins {
		if in.LeaseMs != 1 {
			t.Fatalf("lease 500µs registered as %d ms, want 1", in.LeaseMs)
		}
	}
}
