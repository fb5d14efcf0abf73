package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestClientFlagValues: a deadline that is not positive, or a datagram
// limit the engine refuses, is a usage error (exit 2) naming the flag, in
// every command that calls a node, before any call is made. (-t 0 was
// taken, and every call failed at once with ECANCELED, exit 1;
// -max-datagram out of range exited 1 on the engine's refusal.)
func TestClientFlagValues(t *testing.T) {
	const addr = "127.0.0.1:9"
	cmds := [][]string{
		{"call", addr, "ping"},
		{"ping", "-c", "1", addr},
		{"stats", addr},
		{"calls", addr},
		{"members", addr},
		{"reg", "-c", addr, "ls"},
	}
	bad := []struct {
		flags []string
		said  string
	}{
		{[]string{"-t", "0"}, "-t"},
		{[]string{"-t", "-1s"}, "-t"},
		{[]string{"-max-datagram", "100"}, "-max-datagram"},
		{[]string{"-max-datagram", "70000"}, "-max-datagram"},
	}
	for _, c := range cmds {
		for _, b := range bad {
			args := append(append([]string{c[0]}, b.flags...), c[1:]...)
			var stdout, stderr bytes.Buffer
			code := runCommand(args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), b.said) {
				t.Errorf("rfcctl %q: exit %d, said %q%q, want exit 2 naming %s", args, code, stdout.String(), stderr.String(), b.said)
			}
		}
	}
}
