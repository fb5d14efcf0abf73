package main

import (
	"fmt"
	"io"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

func cmdCall(args []string, stdout, stderr io.Writer) int {
	c := newCommand("call", "ADDR CALL", stderr, withClient)
	var ps paramList
	c.fs.Var(&ps, "p", "parameter TYPE:VALUE, repeatable (i64, u64, f64, bool, str, bytes, hex)")
	c.json("print the result as JSON")
	pos, code, ok := c.parse(args, nargs(2), "want ADDR CALL (e.g. rfcctl call 127.0.0.1:7000 add -p i64:1 -p i64:2)")
	if !ok {
		return code
	}
	no, err := callNumber(pos[1])
	if err != nil {
		return c.usageError("%v", err)
	}
	p, err := ps.params()
	if err != nil {
		return c.usageError("%v", err)
	}
	s, code := c.dial(pos[0])
	if code != 0 {
		return code
	}
	defer s.close()
	if n := wire.HeaderSize + p.Len(); n > *c.cf.maxDg {
		return c.pastMaxDatagram(n, "header and parameters")
	}
	var rep rfc.Reply
	start := time.Now()
	err = s.ep.Call(s.ctx, s.dst, no, p, &rep)
	rtt := time.Since(start)
	errno := wire.AsErrno(err)
	if *c.asJSON {
		out := map[string]any{"call": no, "errno": errno.String(), "rtt_us": rtt.Microseconds()}
		if err == nil {
			var vals []map[string]any
			for i := 0; i < rep.NParams(); i++ {
				vals = append(vals, jsonValue(rep.Param(i)))
			}
			out["reply"] = vals
		}
		printJSON(stdout, out)
	} else {
		if err == nil {
			for i := 0; i < rep.NParams(); i++ {
				fmt.Fprintln(stdout, renderValue(rep.Param(i)))
			}
		}
		fmt.Fprintf(stdout, "%s rtt %s\n", errno.String(), fmtDur(rtt))
	}
	if err != nil {
		return 1
	}
	return 0
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}
