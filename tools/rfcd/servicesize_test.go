package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceTooLargeExits2: a registry.services entry whose addr or
// metadata the centers would refuse makes rfcd exit 2 before it starts;
// it exited 1 once a center answered EMSGSIZE.
func TestServiceTooLargeExits2(t *testing.T) {
	for _, svc := range []string{
		`{"name": "db", "addr": "` + strings.Repeat("a", 256) + `"}`,
		`{"name": "db", "meta": "` + strings.Repeat("m", 1400) + `"}`,
	} {
		path := filepath.Join(t.TempDir(), "rfcd.json")
		cfg := `{"insecure": true, "addr": "127.0.0.1:0", "node": 3, "roles": ["agent"],
			"registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "services": [` + svc + `]}}`
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if code := run([]string{"-config", path}); code != 2 {
			t.Errorf("exit %d, want 2, for %.60s...", code, svc)
		}
	}
}
