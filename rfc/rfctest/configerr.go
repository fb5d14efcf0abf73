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

// ConfigCase is a case of a configuration check: Mod changes the default
// configuration, which the check must then refuse naming Field, or accept
// when Field is "".
type ConfigCase[C any] struct {
	Name  string
	Mod   func(*C)
	Field string
}

// ConfigCases runs each case as a subtest named by its Name: the default
// configuration (def), changed by the case's Mod, checked by check, has
// the outcome ConfigOutcome wants for scope and the case's Field.
func ConfigCases[C any](t *testing.T, scope string, def func() C, check func(*C) error, cases []ConfigCase[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			c := def()
			tc.Mod(&c)
			ConfigOutcome(t, check(&c), scope, tc.Field)
		})
	}
}
