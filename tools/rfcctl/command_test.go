package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestParseVerb: a command of verbs takes a verb of its usage line with an
// argument count that line allows (ARG required, [ARG] optional, ARG...
// one or more), wants -c when it has it, and names the verbs and the
// arguments in its refusals.
func TestParseVerb(t *testing.T) {
	const usage = "ls | get [PREFIX] | put KEY VALUE | add NAME ADDR..."
	want := []verbSpec{{"ls", "", 0, 0}, {"get", "[PREFIX]", 0, 1}, {"put", "KEY VALUE", 2, 2}, {"add", "NAME ADDR...", 2, -1}}
	if got := verbsOf(usage); !slices.Equal(got, want) {
		t.Fatalf("verbsOf(%q) = %v, want %v", usage, got, want)
	}
	steps := []struct {
		args       []string
		code       int
		verb, said string
	}{
		{[]string{"-c", "x", "ls"}, 0, "ls", ""},
		{[]string{"-c", "x", "get"}, 0, "get", ""},
		{[]string{"-c", "x", "get", "p"}, 0, "get", ""},
		{[]string{"-c", "x", "put", "k", "v"}, 0, "put", ""},
		{[]string{"add", "-c", "x", "n", "a", "b", "c"}, 0, "add", ""},
		{[]string{"ls"}, 2, "", "rfcctl: t: want -c CENTERS and a verb (ls, get, put, add)"},
		{[]string{"-c", "x"}, 2, "", "want -c CENTERS and a verb"},
		{[]string{"-c", "x", "frob"}, 2, "", `rfcctl: t: unknown verb "frob"`},
		{[]string{"-c", "x", "ls", "a"}, 2, "", "rfcctl: t ls: takes no arguments"},
		{[]string{"-c", "x", "get", "p", "q"}, 2, "", "rfcctl: t get: want [PREFIX]"},
		{[]string{"-c", "x", "put", "k"}, 2, "", "rfcctl: t put: want KEY VALUE"},
		{[]string{"-c", "x", "add", "n"}, 2, "", "rfcctl: t add: want NAME ADDR..."},
	}
	for _, s := range steps {
		var stderr bytes.Buffer
		c := newCommand("t", usage, &stderr, withCenters)
		verb, rest, code, ok := c.parseVerb(s.args)
		if ok != (s.code == 0) || code != s.code || verb != s.verb || !strings.Contains(stderr.String(), s.said) {
			t.Errorf("parseVerb(%q): verb %q %q, code %d, ok %v, said %q", s.args, verb, rest, code, ok, stderr.String())
		}
	}
}
