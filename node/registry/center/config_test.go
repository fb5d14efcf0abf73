package center

import (
	"testing"
	"time"

	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc/rfctest"
)

// TestConfigRefused: StartCenter refuses an out-of-range configuration
// with the one configuration error, naming the field and its value.
func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		field string
		mod   func(c *Config)
		value string
	}{
		{"DataDir", func(c *Config) { c.DataDir = "" }, ""},
		{"Index", func(c *Config) { c.Index = 2 }, "2"},
		{"SweepEvery", func(c *Config) { c.SweepEvery = time.Microsecond }, "1µs"},
		{"Pushers", func(c *Config) { c.Pushers = 0 }, "0"},
		// A lease travels and is kept as u32 ms in the record: one past
		// 2^32-1 ms (49.7 days) was cut to a lease of a few days.
		{"MaxLease", func(c *Config) { c.MaxLease = 50 * 24 * time.Hour }, "1200h0m0s"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			cfg := DefaultConfig(t.TempDir())
			cfg.Logger = rfctest.Quiet
			tc.mod(&cfg)
			c, err := StartCenter(regtest.Endpoint(t, 100, ""), cfg)
			if err == nil {
				c.Close()
				t.Fatal("accepted")
			}
			if ce := rfctest.ConfigError(t, err, "registry", tc.field); ce != nil && ce.Value != tc.value {
				t.Fatalf("got %#v, want value %q", err, tc.value)
			}
		})
	}
}
