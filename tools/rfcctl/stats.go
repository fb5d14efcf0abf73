package main

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"fastcall/rfc"
	"fastcall/wire"
)

// callRow is one call number's counters as the STATS call returns them.
type callRow struct {
	Call      uint16 `json:"call"`
	Name      string `json:"name"`
	Served    uint64 `json:"served"`
	ServedErr uint64 `json:"served_errors"`
	Called    uint64 `json:"called"`
	CalledErr uint64 `json:"called_errors"`
	Retrans   uint64 `json:"retransmissions"`
	Dups      uint64 `json:"duplicates"`
	P50us     uint64 `json:"p50_us"`
	P99us     uint64 `json:"p99_us"`
}

func cmdStats(args []string, stdout, stderr io.Writer) int {
	c, s, code, ok := queryNode("stats", args, stderr, pageRequestSize)
	if !ok {
		return code
	}
	defer s.close()
	rows, engine, err := fetchStats(s, c.cf)
	if err != nil {
		return c.queryFailed(s, err)
	}
	if *c.asJSON {
		printJSON(stdout, map[string]any{"engine": engine, "calls": rows})
		return 0
	}
	tw := newTable(stdout)
	for _, kv := range engine {
		fmt.Fprintf(tw, "%s\t%d\n", printableString(kv.Name), kv.Value)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "call\tname\tserved\terrors\tcalled\terrors\tretrans\tdups\tp50µs\tp99µs\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%#04x\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Call, printableString(r.Name), r.Served, r.ServedErr,
			r.Called, r.CalledErr, r.Retrans, r.Dups, r.P50us, r.P99us)
	}
	tw.Flush()
	return 0
}

// statsPad pads stats requests so that a node answering an
// unauthenticated request (at most three times its size) can fill a page.
var statsPad = make([]byte, 420)

// pageRequestSize is the size of a request of queryPages, header
// included: a cursor and statsPad. It is the largest request of stats
// and calls, whose commands refuse a -max-datagram below it (queryNode).
var pageRequestSize = wire.HeaderSize + wire.ParamHdrSize + wire.SizeFixed8 + wire.ParamHdrSize + len(statsPad)

type engineValue struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// fetchStats reads every page of CallStats and the engine counters.
func fetchStats(s *session, cf *clientFlags) ([]callRow, []engineValue, error) {
	var rows []callRow
	err := cf.queryPages(s, rfc.CallStats, 10, func(rep *rfc.Reply, i int) {
		rows = append(rows, callRow{Call: uint16(rep.Param(i).Uint64()), Name: string(rep.Param(i + 1).Bytes()),
			Served: rep.Param(i + 2).Uint64(), ServedErr: rep.Param(i + 3).Uint64(), Called: rep.Param(i + 4).Uint64(),
			CalledErr: rep.Param(i + 5).Uint64(), Retrans: rep.Param(i + 6).Uint64(), Dups: rep.Param(i + 7).Uint64(),
			P50us: rep.Param(i + 8).Uint64(), P99us: rep.Param(i + 9).Uint64()})
	})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := cf.ctx()
	defer cancel()
	var p wire.Params
	p.Reset(make([]byte, 1024))
	p.Bytes(statsPad)
	var rep rfc.Reply
	if err := s.ep.Call(ctx, s.dst, rfc.CallEngineStats, &p, &rep); err != nil {
		return nil, nil, err
	}
	var engine []engineValue
	for i := 0; i+1 < rep.NParams(); i += 2 {
		engine = append(engine, engineValue{string(rep.Param(i).Bytes()), rep.Param(i + 1).Uint64()})
	}
	return rows, engine, nil
}

// queryPages reads every page of a paged listing call (CallStats,
// CallCalls), each with its own -t deadline. A request is (u64 cursor,
// bytes statsPad); a reply is (u64 next cursor, 0 after the last page)
// followed by rows of stride parameters, handed to row by the index of
// their first parameter. Its command has checked the request against
// -max-datagram (pageRequestSize). A reply of another shape, or a next cursor that
// does not advance or is not a call number, is EPROTO. A cursor is a call
// number, so the pages end within 65536 of them: there is no page cap to
// cut the listing short.
func (c *clientFlags) queryPages(s *session, callNo uint16, stride int, row func(rep *rfc.Reply, i int)) error {
	var rep rfc.Reply
	var p wire.Params
	buf := make([]byte, 1024)
	cursor := uint64(0)
	for {
		p.Reset(buf)
		p.Uint64(cursor)
		p.Bytes(statsPad)
		ctx, cancel := c.ctx()
		err := s.ep.Call(ctx, s.dst, callNo, &p, &rep)
		cancel()
		if err != nil {
			return err
		}
		if rep.NParams() < 1 || (rep.NParams()-1)%stride != 0 {
			return wire.EPROTO
		}
		for i := 1; i < rep.NParams(); i += stride {
			row(&rep, i)
		}
		next := rep.Param(0).Uint64()
		if next == 0 {
			return nil
		}
		if next <= cursor || next > math.MaxUint16 {
			return wire.EPROTO
		}
		cursor = next
	}
}
