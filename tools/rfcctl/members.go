package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"fastcall/node/heartbeat"
)

func cmdMembers(args []string, stdout, stderr io.Writer) int {
	q, code, ok := openNodeQuery("members", args, stderr)
	if !ok {
		return code
	}
	defer q.ep.Close()
	cf, ep, dst := q.cf, q.ep, q.dst
	ctx, cancel := cf.ctx()
	defer cancel()
	ms, err := heartbeat.QueryMembers(ctx, ep, dst)
	if err != nil {
		fmt.Fprintf(stderr, "rfcctl: members %s: %s\n", dst, errName(err))
		return 1
	}
	if q.asJSON {
		type row struct {
			Addr        string  `json:"addr"`
			Node        uint32  `json:"node"`
			State       string  `json:"state"`
			Incarnation uint32  `json:"incarnation"`
			HeardAgoMs  float64 `json:"heard_ago_ms"`
		}
		var rows []row
		for _, m := range ms {
			rows = append(rows, row{m.Addr.String(), m.Node, m.State.String(), m.Incarnation, float64(m.HeardAgo) / 1e6})
		}
		b, _ := json.Marshal(rows)
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "member\tnode\tstate\tincarnation\tlast heard")
	for _, m := range ms {
		ago := "never"
		if m.HeardAgo >= 0 {
			ago = m.HeardAgo.Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", m.Addr, m.Node, m.State, m.Incarnation, ago)
	}
	tw.Flush()
	return 0
}
