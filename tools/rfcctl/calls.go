package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"fastcall/rfc"
	"fastcall/wire"
)

// callInfoRow is one registered call number as the CALLS call returns it.
type callInfoRow struct {
	Call   uint16   `json:"call"`
	Name   string   `json:"name"`
	Schema []string `json:"schema"` // parameter type names in order
	Flags  []string `json:"flags"`  // idempotent, one-way, inline, priority, deferred
}

// callFlagNames names the flag bits of a CALLS entry, in print order.
var callFlagNames = []struct {
	bit  uint64
	name string
}{
	{rfc.InfoIdempotent, "idempotent"},
	{rfc.InfoOneWay, "one-way"},
	{rfc.InfoInline, "inline"},
	{rfc.InfoPriority, "priority"},
	{rfc.InfoDeferred, "deferred"},
}

func cmdCalls(args []string, stdout, stderr io.Writer) int {
	q, code, ok := openNodeQuery("calls", args, stderr)
	if !ok {
		return code
	}
	defer q.ep.Close()
	cf, ep, dst := q.cf, q.ep, q.dst
	rows, err := fetchCalls(cf, ep, dst)
	if err != nil {
		fmt.Fprintf(stderr, "rfcctl: calls %s: %s\n", dst, errName(err))
		return 1
	}
	if q.asJSON {
		b, _ := json.Marshal(rows)
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "call\tname\tparameters\tflags")
	for _, r := range rows {
		sc, fl := strings.Join(r.Schema, ","), strings.Join(r.Flags, ",")
		if sc == "" {
			sc = "-"
		}
		if fl == "" {
			fl = "-"
		}
		fmt.Fprintf(tw, "%#04x\t%s\t%s\t%s\n", r.Call, r.Name, sc, fl)
	}
	tw.Flush()
	return 0
}

// fetchCalls reads every page of CallCalls.
func fetchCalls(cf *clientFlags, ep *rfc.Endpoint, dst netip.AddrPort) ([]callInfoRow, error) {
	rows := []callInfoRow{}
	var rep rfc.Reply
	var p wire.Params
	buf := make([]byte, 1024)
	cursor := uint64(0)
	for page := 0; page < 1000; page++ {
		p.Reset(buf)
		p.Uint64(cursor)
		p.Bytes(statsPad)
		ctx, cancel := cf.ctx()
		err := ep.Call(ctx, dst, rfc.CallCalls, &p, &rep)
		cancel()
		if err != nil {
			return nil, err
		}
		if rep.NParams() < 1 || (rep.NParams()-1)%4 != 0 {
			return nil, wire.EPROTO
		}
		for i := 1; i < rep.NParams(); i += 4 {
			r := callInfoRow{Call: uint16(rep.Param(i).Uint64()), Name: rep.Param(i + 1).Str(), Schema: []string{}, Flags: []string{}}
			for _, b := range rep.Param(i + 2).Bytes() {
				r.Schema = append(r.Schema, wire.Type(b).String())
			}
			f := rep.Param(i + 3).Uint64()
			for _, fn := range callFlagNames {
				if f&fn.bit != 0 {
					r.Flags = append(r.Flags, fn.name)
				}
			}
			rows = append(rows, r)
		}
		next := rep.Param(0).Uint64()
		if next == 0 {
			break
		}
		if next <= cursor {
			return nil, wire.EPROTO
		}
		cursor = next
	}
	return rows, nil
}
