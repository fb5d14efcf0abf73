package wire

import (
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// docVector is one ```vector block of docs/PROTOCOL.md.
type docVector struct {
	fields map[string]string
	bytes  []byte
}

func readDocVectors(t *testing.T) []docVector {
	raw, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatalf("read spec: %v", err)
	}
	var out []docVector
	var cur *docVector
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "```vector":
			out = append(out, docVector{fields: map[string]string{}})
			cur = &out[len(out)-1]
		case cur != nil && line == "```":
			cur = nil
		case cur != nil:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("bad vector line %q", line)
			}
			v = strings.TrimSpace(v)
			if _, err := strconv.ParseUint(k, 16, 32); err == nil && len(k) == 4 {
				if off, _ := strconv.ParseUint(k, 16, 32); int(off) != len(cur.bytes) {
					t.Fatalf("vector %s: offset %s, have %d bytes", cur.fields["name"], k, len(cur.bytes))
				}
				b, err := hex.DecodeString(strings.ReplaceAll(v, " ", ""))
				if err != nil {
					t.Fatalf("bad hex %q: %v", v, err)
				}
				cur.bytes = append(cur.bytes, b...)
				continue
			}
			cur.fields[k] = v
		}
	}
	return out
}

func parseFlags(t *testing.T, s string) uint8 {
	names := map[string]uint8{"REQUEST": FlagRequest, "REPLY": FlagReply, "ERROR": FlagError,
		"ONEWAY": FlagOneWay, "RETRANS": FlagRetrans, "AUTH": FlagAuth}
	var f uint8
	for _, n := range strings.Split(s, "|") {
		v, ok := names[n]
		if !ok {
			t.Fatalf("unknown flag %q", n)
		}
		f |= v
	}
	return f
}

func parseNum(t *testing.T, s string) uint64 {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return v
}

// appendDocParam parses "type:value" as written in the spec.
func appendDocParam(t *testing.T, p *Params, s string) {
	ty, val, _ := strings.Cut(s, ":")
	switch ty {
	case "i64":
		v, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		p.Int64(v)
	case "u64":
		p.Uint64(parseNum(t, val))
	case "f64":
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatal(err)
		}
		p.Float64(v)
	case "bool":
		p.Bool(val == "true")
	case "str":
		p.String(val)
	case "bytes":
		b, err := hex.DecodeString(val)
		if err != nil {
			t.Fatal(err)
		}
		p.Bytes(b)
	default:
		t.Fatalf("unknown param type %q", ty)
	}
}

// renderParam is the inverse of appendDocParam.
func renderParam(v Value) string {
	switch v.Type {
	case TypeInt64:
		return "i64:" + strconv.FormatInt(v.Int64(), 10)
	case TypeUint64:
		return "u64:" + strconv.FormatUint(v.Uint64(), 10)
	case TypeFloat64:
		return "f64:" + strconv.FormatFloat(v.Float64(), 'g', -1, 64)
	case TypeBool:
		return "bool:" + strconv.FormatBool(v.Bool())
	case TypeString:
		return "str:" + string(v.Raw)
	case TypeBytes:
		return "bytes:" + hex.EncodeToString(v.Raw)
	}
	return "?"
}

func TestProtocolVectors(t *testing.T) {
	vs := readDocVectors(t)
	if len(vs) < 4 {
		t.Fatalf("spec has %d vectors, want at least 4", len(vs))
	}
	seen := map[string]bool{}
	for _, v := range vs {
		name := v.fields["name"]
		t.Run(name, func(t *testing.T) {
			var key []byte
			if k := v.fields["key"]; k != "none" {
				key = []byte(k)
				seen["auth"] = true
			}
			c := mustCodec(t, 0, key)
			var pk Packet
			if r := c.Decode(&pk, v.bytes); r != ReasonNone {
				t.Fatalf("decode: %v", r)
			}
			errno, ok := ErrnoByName(v.fields["errno"])
			if !ok {
				t.Fatalf("bad errno %q", v.fields["errno"])
			}
			want := Header{
				Flags:       parseFlags(t, v.fields["flags"]),
				CallNo:      uint16(parseNum(t, v.fields["callno"])),
				Errno:       errno,
				Src:         uint32(parseNum(t, v.fields["src"])),
				Dst:         uint32(parseNum(t, v.fields["dst"])),
				CallID:      parseNum(t, v.fields["callid"]),
				Incarnation: uint32(parseNum(t, v.fields["incarnation"])),
				PeerInc:     uint32(parseNum(t, v.fields["peerinc"])),
				Budget:      uint32(parseNum(t, v.fields["budget"])),
				Stamp:       uint32(parseNum(t, v.fields["stamp"])),
			}
			if pk.Header != want {
				t.Fatalf("header %+v, spec says %+v", pk.Header, want)
			}
			var ps []string
			if s := v.fields["params"]; s != "" {
				ps = strings.Fields(s)
			}
			if pk.NParams() != len(ps) {
				t.Fatalf("%d params, spec lists %d", pk.NParams(), len(ps))
			}
			for i, s := range ps {
				if got := renderParam(pk.Param(i)); got != s {
					t.Fatalf("param %d: %s, spec says %s", i, got, s)
				}
			}
			// Re-encode from the spec's fields and compare byte for byte.
			var p Params
			seg := make([]byte, 1024)
			p.Reset(seg)
			for _, s := range ps {
				appendDocParam(t, &p, s)
			}
			dg := make([]byte, DefaultMaxDatagram)
			n, e := c.EncodeParams(dg, &want, &p)
			if e != OK {
				t.Fatalf("encode: %v", e)
			}
			if !bytes.Equal(dg[:n], v.bytes) {
				t.Fatalf("re-encoded bytes differ:\n got %x\nspec %x", dg[:n], v.bytes)
			}
			if want.Flags&FlagRequest != 0 {
				seen["request"] = true
			}
			if want.Flags&FlagError != 0 {
				seen["error"] = true
				if key != nil {
					seen["auth-error"] = true
				}
			} else if want.Flags&FlagReply != 0 {
				seen["reply"] = true
			}
			if want.Flags&FlagRetrans != 0 {
				seen["retrans"] = true
			}
		})
	}
	for _, k := range []string{"request", "reply", "error", "auth", "auth-error", "retrans"} {
		if !seen[k] {
			t.Errorf("spec lacks a %s vector", k)
		}
	}
}

// TestErrnoTable keeps the spec's error-number table equal to the code's.
func TestErrnoTable(t *testing.T) {
	raw, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, line := range strings.Split(string(raw), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 4 {
			continue
		}
		num, err := strconv.Atoi(strings.TrimSpace(cols[1]))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(cols[2])
		if !strings.HasPrefix(name, "E") && name != "OK" {
			continue
		}
		if Errno(num).String() != name {
			t.Errorf("spec: %d is %s, code says %s", num, name, Errno(num))
		}
		found++
	}
	if found != int(errnoLast)+1 {
		t.Fatalf("spec lists %d error numbers, code has %d", found, errnoLast+1)
	}
}

// TestRetransmissionVector checks the spec's retransmission vector against
// what the engine does to retransmit: the vector it names, restamped with
// Restamp (RETRANS set, budget and stamp updated, tag recomputed). The
// original bytes with only the flag changed fail the checksum.
func TestRetransmissionVector(t *testing.T) {
	byName := map[string]docVector{}
	for _, v := range readDocVectors(t) {
		byName[v.fields["name"]] = v
	}
	found := 0
	for _, v := range byName {
		orig, ok := v.fields["retransmits"]
		if !ok {
			continue
		}
		found++
		first, ok := byName[orig]
		if !ok {
			t.Fatalf("vector %s retransmits %q, which the spec lacks", v.fields["name"], orig)
		}
		var key []byte
		if k := v.fields["key"]; k != "none" {
			key = []byte(k)
		}
		c := mustCodec(t, 0, key)
		b := append([]byte(nil), first.bytes...)
		c.Restamp(b, uint32(parseNum(t, v.fields["budget"])), uint32(parseNum(t, v.fields["stamp"])), true)
		if !bytes.Equal(b, v.bytes) {
			t.Fatalf("restamped %s:\n got %x\nspec %x", orig, b, v.bytes)
		}
		if bytes.Equal(b[OffTag:OffTag+SizeTag], first.bytes[OffTag:OffTag+SizeTag]) {
			t.Fatal("retransmission kept the original tag")
		}
		stale := append([]byte(nil), first.bytes...)
		stale[OffFlags] |= FlagRetrans
		var p Packet
		if r := c.Decode(&p, stale); r != ReasonChecksum && r != ReasonTag {
			t.Fatalf("RETRANS set without resealing: decode %v, want a tag failure", r)
		}
	}
	if found == 0 {
		t.Fatal("spec has no retransmission vector")
	}
}

// TestAuthErrorVector checks the authenticated error reply: it opens with
// the key, not without it, and carries no parameters.
func TestAuthErrorVector(t *testing.T) {
	for _, v := range readDocVectors(t) {
		f := parseFlags(t, v.fields["flags"])
		if f&FlagError == 0 || f&FlagAuth == 0 {
			continue
		}
		var p Packet
		if r := mustCodec(t, 0, []byte(v.fields["key"])).Decode(&p, v.bytes); r != ReasonNone || p.NParams() != 0 || p.Errno == OK {
			t.Fatalf("%s: decode %v, %d params, errno %v", v.fields["name"], r, p.NParams(), p.Errno)
		}
		if r := mustCodec(t, 0, nil).Decode(&p, v.bytes); r != ReasonTag {
			t.Fatalf("%s without the key: %v, want tag", v.fields["name"], r)
		}
		if r := mustCodec(t, 0, []byte("another-cluster-key-000000000000")).Decode(&p, v.bytes); r != ReasonTag {
			t.Fatalf("%s with another key: %v, want tag", v.fields["name"], r)
		}
		return
	}
	t.Fatal("spec has no authenticated error reply vector")
}
