package rfc

import (
	"bytes"
	"testing"
	"time"

	"fastcall/wire"
)

// TestConfigBounds: every limit of Config.check, one value just past it
// (refused with a ConfigError naming the field, EINVAL) and the limit
// itself (accepted).
func TestConfigBounds(t *testing.T) {
	key := bytes.Repeat([]byte{7}, wire.MinKeyLen)
	tests := []struct {
		name  string
		mod   func(*Config)
		field string // "" = accepted
	}{
		{"default", func(*Config) {}, ""},
		{"addr-empty", func(c *Config) { c.Addr = "" }, "Addr"},
		{"datagram-min", func(c *Config) { c.MaxDatagram = wire.HeaderSize + 64 }, ""},
		{"datagram-low", func(c *Config) { c.MaxDatagram = wire.HeaderSize + 63 }, "MaxDatagram"},
		{"datagram-max", func(c *Config) { c.MaxDatagram = wire.MaxDatagram }, ""},
		{"datagram-high", func(c *Config) { c.MaxDatagram = wire.MaxDatagram + 1 }, "MaxDatagram"},
		{"readers-min", func(c *Config) { c.Readers = 1 }, ""},
		{"readers-low", func(c *Config) { c.Readers = 0 }, "Readers"},
		{"readers-max", func(c *Config) { c.Readers = 64 }, ""},
		{"readers-high", func(c *Config) { c.Readers = 65 }, "Readers"},
		{"workers-min", func(c *Config) { c.Workers = 1 }, ""},
		{"workers-low", func(c *Config) { c.Workers = 0 }, "Workers"},
		{"workers-max", func(c *Config) { c.Workers = 4096 }, ""},
		{"workers-high", func(c *Config) { c.Workers = 4097 }, "Workers"},
		{"queue-min", func(c *Config) { c.QueueLen = 1 }, ""},
		{"queue-low", func(c *Config) { c.QueueLen = 0 }, "QueueLen"},
		{"queue-max", func(c *Config) { c.QueueLen = 1 << 20 }, ""},
		{"queue-high", func(c *Config) { c.QueueLen = 1<<20 + 1 }, "QueueLen"},
		{"batch-min", func(c *Config) { c.BatchSize = 1 }, ""},
		{"batch-low", func(c *Config) { c.BatchSize = 0 }, "BatchSize"},
		{"batch-max", func(c *Config) { c.BatchSize = 1024 }, ""},
		{"batch-high", func(c *Config) { c.BatchSize = 1025 }, "BatchSize"},
		{"pending-min", func(c *Config) { c.MaxPending = 1 }, ""},
		{"pending-low", func(c *Config) { c.MaxPending = 0 }, "MaxPending"},
		{"pending-max", func(c *Config) { c.MaxPending = maxSlots }, ""},
		{"pending-high", func(c *Config) { c.MaxPending = maxSlots + 1 }, "MaxPending"},
		{"timeout-zero", func(c *Config) { c.DefaultTimeout = 0 }, "DefaultTimeout"},
		{"timeout-min", func(c *Config) { c.DefaultTimeout = 1 }, ""},
		{"minrto-zero", func(c *Config) { c.MinRTO = 0 }, "MinRTO/MaxRTO"},
		{"maxrto-below-min", func(c *Config) { c.MaxRTO = c.MinRTO - 1 }, "MinRTO/MaxRTO"},
		{"rto-equal", func(c *Config) {
			c.MinRTO, c.InitialRTO, c.MaxRTO = time.Millisecond, time.Millisecond, time.Millisecond
		}, ""},
		{"initial-below-min", func(c *Config) { c.InitialRTO = c.MinRTO - 1 }, "InitialRTO"},
		{"initial-above-max", func(c *Config) { c.InitialRTO = c.MaxRTO + 1 }, "InitialRTO"},
		{"dup-min", func(c *Config) { c.DupEntries = 16 }, ""},
		{"dup-low", func(c *Config) { c.DupEntries = 15 }, "DupEntries"},
		{"dup-max", func(c *Config) { c.DupEntries = 1 << 20 }, ""},
		{"dup-high", func(c *Config) { c.DupEntries = 1<<20 + 1 }, "DupEntries"},
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
	}
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
