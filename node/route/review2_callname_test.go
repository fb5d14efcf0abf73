package route

import (
	"errors"
	"strings"
	"testing"

	"fastcall/rfc"
)

// TestReview2CallNameAuditable: a routed call whose name the audit line
// cannot hold as it is (a blank or control byte, more than 64 bytes, not
// UTF-8) is refused by New. Such a name used to be accepted and written
// altered (blanks as '_', cut at 64 bytes, possibly inside a character),
// so an audit query by the call's name never found its records.
func TestReview2CallNameAuditable(t *testing.T) {
	for _, name := range []string{"ns put", "ns\tput", "ns\nput", "", strings.Repeat("n", 65), strings.Repeat("é", 33), "ns\xffput"} {
		cfg := testRouterConfig(t)
		cfg.Calls = NamespaceCalls()
		cfg.Calls[0].Name = name
		ep := newEndpoint(t, 1, 0)
		r, err := New(ep, cfg, NewMemMounts())
		if err == nil {
			r.Close()
		}
		var ce *rfc.ConfigError
		if !errors.As(err, &ce) || ce.Field != "Calls" {
			t.Fatalf("call name %q: New = %v, want a ConfigError on Calls", name, err)
		}
	}
	// The longest name the line holds is accepted.
	cfg := testRouterConfig(t)
	cfg.Calls = NamespaceCalls()
	cfg.Calls[0].Name = strings.Repeat("n", 64)
	r, err := New(newEndpoint(t, 1, 0), cfg, NewMemMounts())
	if err != nil {
		t.Fatalf("64-byte name: %v", err)
	}
	r.Close()
}
