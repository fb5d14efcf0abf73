package registry

import (
	"time"

	"fastcall/wire"
)

// DefaultLease is the lease of a registration that asks for none
// (a center's Config.DefaultLease by default); agents renew a third of it.
const DefaultLease = 10 * time.Second

// ConfigError names the configuration field that is out of range.
type ConfigError struct {
	Field string
	Why   string
}

func (e *ConfigError) Error() string { return "registry config: " + e.Field + ": " + e.Why }

// Errno makes a ConfigError carry EINVAL.
func (e *ConfigError) Errno() wire.Errno { return wire.EINVAL }
