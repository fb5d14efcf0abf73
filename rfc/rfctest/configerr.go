package rfctest

import (
	"errors"
	"testing"

	"fastcall/rfc"
	"fastcall/wire"
)

// ConfigError checks that err is the configuration error of scope naming
// field (an *rfc.ConfigError that carries EINVAL itself, as the API
// returns it: wire.AsErrno does not unwrap), and marks the test failed
// with what it got when it is not. It returns the error, for the checks
// a test adds (its Value, its Why), or nil when err is not that error.
func ConfigError(t testing.TB, err error, scope, field string) *rfc.ConfigError {
	t.Helper()
	var ce *rfc.ConfigError
	if !errors.As(err, &ce) || ce.Scope != scope || ce.Field != field || wire.AsErrno(err) != wire.EINVAL {
		t.Errorf("got %v, want a %s ConfigError naming %s (EINVAL)", err, scope, field)
		return nil
	}
	return ce
}

// ConfigOutcome checks the outcome of a configuration check that must
// accept the configuration when field is "" (err nil) and otherwise
// refuse it with the ConfigError of scope naming field; it marks the test
// failed when the outcome is another.
func ConfigOutcome(t testing.TB, err error, scope, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("%s config refused: %v", scope, err)
		}
		return
	}
	ConfigError(t, err, scope, field)
}
