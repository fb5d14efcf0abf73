package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
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
	q, code, ok := openNodeQuery("stats", args, stderr)
	if !ok {
		return code
	}
	defer q.ep.Close()
	cf, ep, dst := q.cf, q.ep, q.dst
	rows, engine, err := fetchStats(cf, ep, dst)
	if err != nil {
		fmt.Fprintf(stderr, "rfcctl: stats %s: %s\n", dst, errName(err))
		return 1
	}
	if q.asJSON {
		b, _ := json.Marshal(map[string]any{"engine": engine, "calls": rows})
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, kv := range engine {
		fmt.Fprintf(tw, "%s\t%d\n", kv.Name, kv.Value)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "call\tname\tserved\terrors\tcalled\terrors\tretrans\tdups\tp50µs\tp99µs\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%#04x\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Call, r.Name, r.Served, r.ServedErr,
			r.Called, r.CalledErr, r.Retrans, r.Dups, r.P50us, r.P99us)
	}
	tw.Flush()
	return 0
}

// statsPad pads stats requests so that a node answering an
// unauthenticated request (at most three times its size) can fill a page.
var statsPad = make([]byte, 420)

type engineValue struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// fetchStats reads every page of CallStats and the engine counters.
func fetchStats(cf *clientFlags, ep *rfc.Endpoint, dst netip.AddrPort) ([]callRow, []engineValue, error) {
	var rows []callRow
	var rep rfc.Reply
	var p wire.Params
	buf := make([]byte, 1024)
	cursor := uint64(0)
	for page := 0; page < 1000; page++ {
		p.Reset(buf)
		p.Uint64(cursor)
		p.Bytes(statsPad)
		ctx, cancel := cf.ctx()
		err := ep.Call(ctx, dst, rfc.CallStats, &p, &rep)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		if rep.NParams() < 1 || (rep.NParams()-1)%10 != 0 {
			return nil, nil, wire.EPROTO
		}
		for i := 1; i < rep.NParams(); i += 10 {
			rows = append(rows, callRow{Call: uint16(rep.Param(i).Uint64()), Name: string(rep.Param(i + 1).Bytes()),
				Served: rep.Param(i + 2).Uint64(), ServedErr: rep.Param(i + 3).Uint64(), Called: rep.Param(i + 4).Uint64(),
				CalledErr: rep.Param(i + 5).Uint64(), Retrans: rep.Param(i + 6).Uint64(), Dups: rep.Param(i + 7).Uint64(),
				P50us: rep.Param(i + 8).Uint64(), P99us: rep.Param(i + 9).Uint64()})
		}
		cursor = rep.Param(0).Uint64()
		if cursor == 0 {
			break
		}
	}
	ctx, cancel := cf.ctx()
	defer cancel()
	p.Reset(buf)
	p.Bytes(statsPad)
	if err := ep.Call(ctx, dst, rfc.CallEngineStats, &p, &rep); err != nil {
		return nil, nil, err
	}
	var engine []engineValue
	for i := 0; i+1 < rep.NParams(); i += 2 {
		engine = append(engine, engineValue{string(rep.Param(i).Bytes()), rep.Param(i + 1).Uint64()})
	}
	return rows, engine, nil
}
