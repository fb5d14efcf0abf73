package main

import (
	"fmt"
	"io"
	"strings"

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
	c, s, code, ok := queryNode("calls", args, stderr, pageRequestSize)
	if !ok {
		return code
	}
	defer s.close()
	rows, err := fetchCalls(s, c.cf)
	if err != nil {
		return c.queryFailed(s, err)
	}
	if *c.asJSON {
		printJSON(stdout, rows)
		return 0
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "call\tname\tparameters\tflags")
	for _, r := range rows {
		sc, fl := strings.Join(r.Schema, ","), strings.Join(r.Flags, ",")
		if sc == "" {
			sc = "-"
		}
		if fl == "" {
			fl = "-"
		}
		fmt.Fprintf(tw, "%#04x\t%s\t%s\t%s\n", r.Call, printableString(r.Name), sc, fl)
	}
	tw.Flush()
	return 0
}

// fetchCalls reads every page of CallCalls.
func fetchCalls(s *session, cf *clientFlags) ([]callInfoRow, error) {
	rows := []callInfoRow{}
	err := cf.queryPages(s, rfc.CallCalls, 4, func(rep *rfc.Reply, i int) {
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
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}
