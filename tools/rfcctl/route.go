package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"fastcall/node/route"
)

// cmdRoute edits and reads the router's mount table, kept in the registry.
func cmdRoute(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("route", "ls | add PREFIX CLUSTER | del PREFIX | cluster NAME ROLE=ADDR... | resolve PATH", stderr)
	cf := addClientFlags(fs)
	centers := fs.String("c", "", "registry centers, IP:PORT[,IP:PORT] (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parse(fs, args); done {
		return code
	}
	pos := positional(fs)
	if len(pos) == 0 || *centers == "" {
		return usageError(stderr, "route: want -c CENTERS and a verb (ls, add, del, cluster, resolve)")
	}
	verb, rest := pos[0], pos[1:]
	need := map[string]int{"ls": 0, "add": 2, "del": 1, "resolve": 1}
	if n, ok := need[verb]; ok && len(rest) != n {
		return usageError(stderr, "route %s: wrong number of arguments", verb)
	} else if !ok && verb != "cluster" {
		return usageError(stderr, "route: unknown verb %q", verb)
	} else if verb == "cluster" && len(rest) < 2 {
		return usageError(stderr, "route cluster: want NAME ROLE=ADDR...")
	}
	ep, cli, code := cf.registryClient("route", *centers, stderr)
	if code != 0 {
		return code
	}
	defer ep.Close()
	st := route.RegistryMounts{C: cli}
	ctx, cancel := cf.ctx()
	defer cancel()
	fail := func(err error) int { fmt.Fprintln(stdout, errName(err)); return 1 }
	tp := route.DefaultTablePrefix
	switch verb {
	case "ls":
		tab, err := route.ListTable(ctx, st, tp)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			b, _ := json.Marshal(tab)
			fmt.Fprintln(stdout, string(b))
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "mount\tsub-cluster")
		for _, m := range tab.Mounts {
			fmt.Fprintf(tw, "%s\t%s\n", m.Prefix, m.Cluster)
		}
		fmt.Fprintln(tw, "\nsub-cluster\tmembers")
		for _, c := range tab.Clusters {
			fmt.Fprintf(tw, "%s\t%s\n", c.Name, string(route.EncodeMembers(c.Members)))
		}
		tw.Flush()
	case "add":
		if err := route.AddMount(ctx, st, tp, rest[0], rest[1]); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "OK")
	case "del":
		if err := route.DelMount(ctx, st, tp, rest[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "OK")
	case "cluster":
		ms, err := route.ParseMembers([]byte(strings.Join(rest[1:], " ")))
		if err != nil {
			return usageError(stderr, "route cluster: members: want active=IP:PORT standby=IP:PORT ...")
		}
		if err := route.AddCluster(ctx, st, tp, rest[0], ms); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "OK")
	case "resolve":
		res, err := route.ResolvePath(ctx, st, tp, rest[0])
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			b, _ := json.Marshal(res)
			fmt.Fprintln(stdout, string(b))
			return 0
		}
		fmt.Fprintf(stdout, "%s -> mount %s, sub-cluster %s, active %s\n", rest[0], res.Prefix, res.Cluster, res.Active)
	}
	return 0
}

// cmdAudit queries a router's audit trail by call name.
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit", "ROUTER -call NAME", stderr)
	cf := addClientFlags(fs)
	call := fs.String("call", "", "call name, e.g. ns-put (required)")
	since := fs.String("since", "", "only calls started at or after: RFC 3339 time or a duration ago (10m)")
	client := fs.String("client", "", "only calls from this client IP or IP:PORT")
	limit := fs.Int("limit", 0, "at most this many records (default and cap: the router's)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parse(fs, args); done {
		return code
	}
	pos := positional(fs)
	if len(pos) != 1 || *call == "" || *limit < 0 {
		return usageError(stderr, "audit: want ROUTER and -call NAME")
	}
	dst, err := parseAddr(pos[0])
	if err != nil {
		return usageError(stderr, "audit: %v", err)
	}
	f := route.AuditFilter{Call: *call, Client: *client, Limit: *limit}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			f.Since = t
		} else {
			return usageError(stderr, "audit -since: want an RFC 3339 time or a duration")
		}
	}
	ep, code := cf.open(dst, stderr)
	if code != 0 {
		return code
	}
	defer ep.Close()
	ctx, cancel := cf.ctx()
	defer cancel()
	es, err := route.AuditQuery(ctx, ep, dst, f)
	if err != nil {
		fmt.Fprintln(stdout, errName(err))
		return 1
	}
	if *asJSON {
		b, _ := json.Marshal(es)
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "start\tclient\tcall\tsub-cluster\tdestination\toutcome\telapsed\tparams")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Start.Format("15:04:05.000000"), e.Client, e.Name, e.Cluster, e.Dest,
			e.Errno.String(), e.Elapsed, e.Params)
	}
	tw.Flush()
	return 0
}
