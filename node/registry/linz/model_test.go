package linz

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestModel checks the checker itself on small histories: a write whose
// outcome is unknown may take effect late; a conflict is definite; a
// read of a value no write made, or a stale read, is not linearizable.
func TestModel(t *testing.T) {
	type op struct {
		in        Input
		out       Output
		call, ret int64
	}
	cases := []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"put-get", []op{
			{Input{Kind: Put, Key: "k", Value: "a"}, Output{Result: OK, Version: 2}, 0, 1},
			{Input{Kind: Get, Key: "k"}, Output{Result: OK, Value: "a", Version: 2}, 2, 3},
		}, porcupine.Ok},
		{"stale-read", []op{
			{Input{Kind: Put, Key: "k", Value: "a"}, Output{Result: OK, Version: 2}, 0, 1},
			{Input{Kind: Put, Key: "k", Value: "b"}, Output{Result: OK, Version: 4}, 2, 3},
			{Input{Kind: Get, Key: "k"}, Output{Result: OK, Value: "a", Version: 2}, 4, 5},
		}, porcupine.Illegal},
		{"unknown-applied-late", []op{
			{Input{Kind: CAS, Key: "k", Value: "a"}, Output{Result: Unknown}, 0, 1},
			{Input{Kind: Get, Key: "k"}, Output{Result: NoEnt}, 2, 3},
			{Input{Kind: Get, Key: "k"}, Output{Result: OK, Value: "a", Version: 3}, 4, 5},
		}, porcupine.Ok},
		{"conflict-definite", []op{
			{Input{Kind: CAS, Key: "k", Value: "a"}, Output{Result: Conflict}, 0, 1},
			{Input{Kind: Get, Key: "k"}, Output{Result: OK, Value: "a", Version: 3}, 2, 3},
		}, porcupine.Illegal},
		{"cas-own-version", []op{
			{Input{Kind: Put, Key: "k", Value: "a"}, Output{Result: OK, Version: 2}, 0, 1},
			{Input{Kind: CAS, Key: "k", Value: "b", Expect: 2}, Output{Result: Conflict}, 2, 5},
			{Input{Kind: Get, Key: "k"}, Output{Result: OK, Value: "b", Version: 3}, 6, 7},
		}, porcupine.Illegal},
		{"delete-lost-to-concurrent-delete", []op{
			{Input{Kind: Put, Key: "k", Value: "a"}, Output{Result: OK, Version: 2}, 0, 1},
			{Input{Kind: Delete, Key: "k", Expect: 2}, Output{Result: Conflict}, 2, 5},
			{Input{Kind: Delete, Key: "k", Expect: 2}, Output{Result: OK, Version: 4}, 3, 4},
			{Input{Kind: Get, Key: "k"}, Output{Result: NoEnt}, 6, 7},
		}, porcupine.Ok},
		{"delete-then-absent", []op{
			{Input{Kind: Put, Key: "k", Value: "a"}, Output{Result: OK, Version: 2}, 0, 1},
			{Input{Kind: Delete, Key: "k", Expect: 2}, Output{Result: OK, Version: 4}, 2, 3},
			{Input{Kind: Get, Key: "k"}, Output{Result: NoEnt}, 4, 5},
			{Input{Kind: Delete, Key: "k"}, Output{Result: NoEnt}, 6, 7},
		}, porcupine.Ok},
		{"version-goes-back", []op{
			{Input{Kind: Put, Key: "k", Value: "a"}, Output{Result: OK, Version: 4}, 0, 1},
			{Input{Kind: Put, Key: "k", Value: "b"}, Output{Result: OK, Version: 3}, 2, 3},
		}, porcupine.Illegal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			for _, o := range tc.ops {
				h.Add(0, o.in, o.out, o.call, o.ret)
			}
			if got := h.Check(0, nil); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
