package main

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
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

// appendParam parses TYPE:VALUE (types i64, u64, f64, bool, str, bytes,
// hex) and appends it.
func appendParam(ps *wire.Params, s string) error {
	ty, val, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("parameter %q: want TYPE:VALUE", s)
	}
	switch ty {
	case "i64":
		v, err := strconv.ParseInt(val, 0, 64)
		if err != nil {
			return fmt.Errorf("parameter %q: not an int64", s)
		}
		ps.Int64(v)
	case "u64":
		v, err := strconv.ParseUint(val, 0, 64)
		if err != nil {
			return fmt.Errorf("parameter %q: not a uint64", s)
		}
		ps.Uint64(v)
	case "f64":
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return fmt.Errorf("parameter %q: not a float64", s)
		}
		ps.Float64(v)
	case "bool":
		v, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("parameter %q: not a bool", s)
		}
		ps.Bool(v)
	case "str":
		ps.String(val)
	case "bytes":
		ps.Bytes([]byte(val))
	case "hex":
		b, err := hex.DecodeString(val)
		if err != nil {
			return fmt.Errorf("parameter %q: not hex", s)
		}
		ps.Bytes(b)
	default:
		return fmt.Errorf("parameter %q: unknown type %q (i64, u64, f64, bool, str, bytes, hex)", s, ty)
	}
	if ps.Err() != wire.OK {
		return fmt.Errorf("parameter %q: %v", s, ps.Err())
	}
	return nil
}

// renderValue prints a decoded value as TYPE:VALUE.
func renderValue(v wire.Value) string {
	switch v.Type {
	case wire.TypeInt64:
		return "i64:" + strconv.FormatInt(v.Int64(), 10)
	case wire.TypeUint64:
		return "u64:" + strconv.FormatUint(v.Uint64(), 10)
	case wire.TypeFloat64:
		f := v.Float64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return "f64:" + strconv.FormatFloat(f, 'g', -1, 64)
		}
		return "f64:" + strconv.FormatFloat(f, 'g', -1, 64)
	case wire.TypeBool:
		return "bool:" + strconv.FormatBool(v.Bool())
	case wire.TypeString:
		return "str:" + strconv.Quote(string(v.Raw))
	case wire.TypeBytes:
		return "bytes:" + hex.EncodeToString(v.Raw)
	}
	return v.Type.String()
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
