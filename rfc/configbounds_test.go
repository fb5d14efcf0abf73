package rfc

import (
	"bytes"
	"testing"
	"time"

	"fastcall/wire"
)

// configCase is one configuration of TestConfigBounds: mod applied to the
// default, and the field the check must name ("" = accepted).
type configCase struct {
	name  string
	mod   func(*Config)
	field string
}

// intBounds is the four cases of an integer field with the range [lo, hi]:
// lo and hi accepted, lo-1 and hi+1 refused naming field.
func intBounds(name, field string, at func(*Config) *int, lo, hi int) []configCase {
	set := func(v int) func(*Config) { return func(c *Config) { *at(c) = v } }
	return []configCase{
		{name + "-min", set(lo), ""},
		{name + "-low", set(lo - 1), field},
		{name + "-max", set(hi), ""},
		{name + "-high", set(hi + 1), field},
	}
}

// TestConfigBounds: every limit of Config.check, one value just past it
// (refused with a ConfigError naming the field, EINVAL) and the limit
// itself (accepted).
func TestConfigBounds(t *testing.T) {
	key := bytes.Repeat([]byte{7}, wire.MinKeyLen)
	tests := []configCase{
		{"default", func(*Config) {}, ""},
		{"addr-empty", func(c *Config) { c.Addr = "" }, "Addr"},
	}
	tests = append(tests, intBounds("datagram", "MaxDatagram", func(c *Config) *int { return &c.MaxDatagram }, wire.HeaderSize+64, wire.MaxDatagram)...)
	tests = append(tests, intBounds("readers", "Readers", func(c *Config) *int { return &c.Readers }, 1, 64)...)
	tests = append(tests, intBounds("workers", "Workers", func(c *Config) *int { return &c.Workers }, 1, 4096)...)
	tests = append(tests, intBounds("queue", "QueueLen", func(c *Config) *int { return &c.QueueLen }, 1, 1<<20)...)
	tests = append(tests, intBounds("batch", "BatchSize", func(c *Config) *int { return &c.BatchSize }, 1, 1024)...)
	tests = append(tests, intBounds("pending", "MaxPending", func(c *Config) *int { return &c.MaxPending }, 1, maxSlots)...)
	tests = append(tests, intBounds("dup", "DupEntries", func(c *Config) *int { return &c.DupEntries }, 16, 1<<20)...)
	tests = append(tests, []configCase{
		{"timeout-zero", func(c *Config) { c.DefaultTimeout = 0 }, "DefaultTimeout"},
		{"timeout-min", func(c *Config) { c.DefaultTimeout = 1 }, ""},
		{"minrto-zero", func(c *Config) { c.MinRTO = 0 }, "MinRTO/MaxRTO"},
		{"maxrto-below-min", func(c *Config) { c.MaxRTO = c.MinRTO - 1 }, "MinRTO/MaxRTO"},
		{"rto-equal", func(c *Config) {
			c.MinRTO, c.InitialRTO, c.MaxRTO = time.Millisecond, time.Millisecond, time.Millisecond
		}, ""},
		{"initial-below-min", func(c *Config) { c.InitialRTO = c.MinRTO - 1 }, "InitialRTO"},
		{"initial-above-max", func(c *Config) { c.InitialRTO = c.MaxRTO + 1 }, "InitialRTO"},
		{"dupage-zero", func(c *Config) { c.DupAge = 0 }, "DupAge"},
		{"dupage-min", func(c *Config) { c.DupAge = 1 }, ""},
		{"suspect-min", func(c *Config) { c.SuspectAfter = 1 }, ""},
		{"suspect-zero", func(c *Config) { c.SuspectAfter = 0 }, "SuspectAfter"},
		{"maxage-zero", func(c *Config) { c.MaxAge = 0 }, ""},
		{"maxage-negative", func(c *Config) { c.MaxAge = -1 }, "MaxAge"},
		{"stranger-zero", func(c *Config) { c.StrangerErrorRate = 0 }, ""},
		{"stranger-negative", func(c *Config) { c.StrangerErrorRate = -1 }, "StrangerErrorRate"},
		{"peers-min", func(c *Config) { c.MaxPeers = 1 }, ""},
		{"peers-zero", func(c *Config) { c.MaxPeers = 0 }, "MaxPeers"},
		{"key-min", func(c *Config) { c.Key = key }, ""},
		{"key-short", func(c *Config) { c.Key = key[1:] }, "Key"},
		{"prev-without-key", func(c *Config) { c.PrevKey = key }, "PrevKey"},
		{"prev-min", func(c *Config) { c.Key, c.PrevKey = key, key }, ""},
		{"prev-short", func(c *Config) { c.Key, c.PrevKey = key, key[1:] }, "PrevKey"},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.check()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			ce, ok := err.(*ConfigError)
			if !ok || ce.Field != tc.field || wire.AsErrno(err) != wire.EINVAL {
				t.Fatalf("check = %v, want field %s", err, tc.field)
			}
		})
	}
}
