package main

import (
	"fmt"
	"io"
	"time"

	"fastcall/node/heartbeat"
)

func cmdMembers(args []string, stdout, stderr io.Writer) int {
	c, s, code, ok := queryNode("members", args, stderr, 0)
	if !ok {
		return code
	}
	defer s.close()
	ms, err := heartbeat.QueryMembers(s.ctx, s.ep, s.dst)
	if err != nil {
		return c.queryFailed(s, err)
	}
	if *c.asJSON {
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
		printJSON(stdout, rows)
		return 0
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "member\tnode\tstate\tincarnation\tlast heard")
	for _, m := range ms {
		ago := "never"
		if m.HeardAgo >= 0 {
			ago = m.HeardAgo.Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", printableAddr(m.Addr), m.Node, m.State, m.Incarnation, ago)
	}
	tw.Flush()
	return 0
}
