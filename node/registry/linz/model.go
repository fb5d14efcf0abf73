// Package linz checks that the registry's key/value store is
// linearizable: a History records the operations clients run (their
// inputs, outputs and the times they were called and returned), and Check
// runs the Porcupine checker over it with a model of one key, each key
// checked apart.
//
// It is a module of its own (fastcall/node/registry/linz) so that the
// checker never becomes a dependency of the main module. Its test starts
// two centers as rfcd processes, SIGKILLs and restarts them while clients
// run, and checks the history (docs/REGISTRY.md, "Consistency").
package linz

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation of the store.
type Kind uint8

const (
	Get Kind = iota
	Put
	CAS    // compare-and-set: Expect is the version required, 0 = absent
	Delete // Expect 0: any version
)

func (k Kind) String() string {
	return [...]string{"get", "put", "cas", "delete"}[k]
}

// Result classifies an operation's outcome. Only OK, Conflict and NoEnt
// are definite; an operation that ended otherwise may or may not have
// taken effect (Unknown), at any moment after it was called.
//
// Conflict is "not applied". For a CAS it also says the version did not
// match when the CAS took effect. A put or a delete gets it when a write
// of the key made at the other center at the same moment won (the senior
// center refuses the junior's replica, docs/REGISTRY.md): the model lets
// it be a no-op in any state.
type Result uint8

const (
	OK       Result = iota
	Conflict        // ECONFLICT: not applied
	NoEnt           // ENOENT: the key is absent (get, delete); not applied
	Unknown         // any other error
)

func (r Result) String() string {
	return [...]string{"ok", "conflict", "noent", "unknown"}[r]
}

// Input is what a client asked.
type Input struct {
	Kind   Kind
	Key    string
	Value  string // put, cas
	Expect uint64 // cas, delete
}

// Output is what it got: for OK, the value and version read (get) or the
// version made (put, cas, delete).
type Output struct {
	Result  Result
	Value   string
	Version uint64
}

// state is the model's state of one key. Version 0 means not known (a
// write whose outcome is unknown took effect): any version then matches
// until one is observed.
type state struct {
	Exists  bool
	Value   string
	Version uint64
}

// newer reports whether version v may follow the state's version:
// versions of a key grow strictly.
func (s state) newer(v uint64) bool { return s.Version == 0 || v > s.Version }

// casMay and casMayNot report whether a CAS expecting e may succeed, or
// may fail, in s.
func (s state) casMay(e uint64) bool {
	if e == 0 {
		return !s.Exists
	}
	return s.Exists && (s.Version == e || s.Version == 0)
}

func (s state) casMayNot(e uint64) bool {
	if e == 0 {
		return s.Exists
	}
	return !s.Exists || s.Version != e || s.Version == 0
}

// step returns the states a key may be in after the operation (none if
// the operation could not have given its output in s).
func step(st, in, out interface{}) []interface{} {
	s, i, o := st.(state), in.(Input), out.(Output)
	var next []interface{}
	may := func(ok bool, n state) {
		if ok {
			next = append(next, n)
		}
	}
	switch i.Kind {
	case Get:
		switch o.Result {
		case OK:
			may(s.Exists && s.Value == o.Value && (s.Version == 0 || s.Version == o.Version),
				state{true, o.Value, o.Version})
		case NoEnt:
			may(!s.Exists, s)
		default:
			may(true, s) // a failed read tells nothing
		}
	case Put:
		switch o.Result {
		case OK:
			may(s.newer(o.Version), state{true, i.Value, o.Version})
		case Conflict:
			may(true, s)
		case Unknown:
			may(true, s)
			may(true, state{true, i.Value, 0})
		}
	case CAS:
		switch o.Result {
		case OK:
			may(s.casMay(i.Expect) && s.newer(o.Version), state{true, i.Value, o.Version})
		case Conflict:
			may(s.casMayNot(i.Expect), s)
		case Unknown:
			may(true, s)
			may(s.casMay(i.Expect), state{true, i.Value, 0})
		}
	case Delete:
		deletable := s.Exists && (i.Expect == 0 || s.Version == i.Expect || s.Version == 0)
		switch o.Result {
		case OK:
			may(deletable && s.newer(o.Version), state{false, "", o.Version})
		case NoEnt:
			may(!s.Exists, s)
		case Conflict:
			may(true, s)
		case Unknown:
			may(true, s)
			may(deletable, state{false, "", 0})
		}
	}
	return next
}

// partition splits a history by key.
func partition(h []porcupine.Operation) [][]porcupine.Operation {
	by := map[string][]porcupine.Operation{}
	for _, op := range h {
		k := op.Input.(Input).Key
		by[k] = append(by[k], op)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, by[k])
	}
	return out
}

// Model is the store's model for Porcupine: each key starts absent.
func Model() porcupine.Model {
	m := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []interface{} { return []interface{}{state{}} },
		Step:      step,
		DescribeOperation: func(in, out interface{}) string {
			i, o := in.(Input), out.(Output)
			switch i.Kind {
			case Get:
				return fmt.Sprintf("get(%s) -> %s %q v%d", i.Key, o.Result, o.Value, o.Version)
			case Put:
				return fmt.Sprintf("put(%s, %q) -> %s v%d", i.Key, i.Value, o.Result, o.Version)
			case CAS:
				return fmt.Sprintf("cas(%s, v%d, %q) -> %s v%d", i.Key, i.Expect, i.Value, o.Result, o.Version)
			}
			return fmt.Sprintf("delete(%s, v%d) -> %s v%d", i.Key, i.Expect, o.Result, o.Version)
		},
		DescribeState: func(st interface{}) string {
			s := st.(state)
			if !s.Exists {
				return fmt.Sprintf("absent (v%d)", s.Version)
			}
			return fmt.Sprintf("%q v%d", s.Value, s.Version)
		},
	}
	return m.ToModel()
}
