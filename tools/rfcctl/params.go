package main

import (
	"encoding/hex"
	"fmt"
	"strings"

	"fastcall/wire"
)

// paramList collects -p TYPE:VALUE flags.
type paramList []string

func (p *paramList) String() string     { return strings.Join(*p, " ") }
func (p *paramList) Set(s string) error { *p = append(*p, s); return nil }

// params parses every -p flag into a fresh parameter list.
func (p paramList) params() (*wire.Params, error) {
	ps := new(wire.Params)
	ps.Reset(make([]byte, wire.MaxDatagram))
	for _, s := range p {
		if err := appendParam(ps, s); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// valueNoun names what a TYPE:VALUE of each type must hold, for messages.
var valueNoun = [...]string{
	wire.TypeInt64:   "an int64",
	wire.TypeUint64:  "a uint64",
	wire.TypeFloat64: "a float64",
	wire.TypeBool:    "a bool",
	wire.TypeBytes:   "bytes",
	wire.TypeString:  "valid UTF-8",
}

// appendParam parses TYPE:VALUE and appends it: TYPE is a wire type name
// (wire.TypeByName: i64, u64, f64, bool, str, bytes) with its text form
// (wire.Params.ParseValue), or hex for bytes written in hex.
func appendParam(ps *wire.Params, s string) error {
	if ps.Count() >= wire.MaxParams {
		return fmt.Errorf("parameter %q: a request holds at most %d parameters", s, wire.MaxParams)
	}
	ty, val, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("parameter %q: want TYPE:VALUE", s)
	}
	if ty == "hex" {
		b, err := hex.DecodeString(val)
		if err != nil {
			return fmt.Errorf("parameter %q: not hex", s)
		}
		ps.Bytes(b)
	} else {
		t, ok := wire.TypeByName(ty)
		if !ok {
			return fmt.Errorf("parameter %q: unknown type %q (i64, u64, f64, bool, str, bytes, hex)", s, ty)
		}
		if e := ps.ParseValue(t, val); e == wire.EINVAL && ps.Err() == wire.OK {
			return fmt.Errorf("parameter %q: not %s", s, valueNoun[t])
		}
	}
	if ps.Err() != wire.OK {
		return fmt.Errorf("parameter %q: %v", s, ps.Err())
	}
	return nil
}

// renderValue prints a decoded value as TYPE:VALUE (wire.AppendValue,
// values whole).
func renderValue(v wire.Value) string {
	return string(wire.AppendValue(nil, v, 0))
}

// jsonValue is a value for -json output.
func jsonValue(v wire.Value) map[string]any {
	m := map[string]any{"type": v.Type.String()}
	switch v.Type {
	case wire.TypeInt64:
		m["value"] = v.Int64()
	case wire.TypeUint64:
		m["value"] = v.Uint64()
	case wire.TypeFloat64:
		m["value"] = v.Float64()
	case wire.TypeBool:
		m["value"] = v.Bool()
	case wire.TypeString:
		m["value"] = string(v.Raw)
	case wire.TypeBytes:
		m["value"] = hex.EncodeToString(v.Raw)
	}
	return m
}
