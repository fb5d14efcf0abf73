package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"fastcall/node/registry"
	"fastcall/node/route"
	"fastcall/node/route/audit"
	"fastcall/wire"
)

// cmdRoute edits and reads the router's mount table, kept in the registry.
func cmdRoute(args []string, stdout, stderr io.Writer) int {
	c := newCommand("route", "ls | add PREFIX CLUSTER | del PREFIX | cluster NAME ROLE=ADDR... | resolve PATH", stderr, withClient|withJSON|withCenters)
	verb, rest, code, ok := c.parseVerb(args)
	if !ok {
		return code
	}
	s, cli, code := c.dialRegistry()
	if code != 0 {
		return code
	}
	defer s.close()
	ctx := s.ctx
	st := route.RegistryMounts{C: cli}
	tp := route.DefaultTablePrefix
	switch verb {
	case "ls":
		tab, err := route.ListTable(ctx, st, tp)
		if code, done := c.printed(stdout, tab, err); done {
			return code
		}
		tw := newTable(stdout)
		fmt.Fprintln(tw, "mount\tsub-cluster")
		for _, m := range tab.Mounts {
			fmt.Fprintf(tw, "%s\t%s\n", printableString(m.Prefix), printableString(m.Cluster))
		}
		fmt.Fprintln(tw, "\nsub-cluster\tmembers")
		for _, c := range tab.Clusters {
			fmt.Fprintf(tw, "%s\t%s\n", printableString(c.Name), printable(route.EncodeMembers(c.Members)))
		}
		tw.Flush()
	case "add":
		if why := mountKeyTooLong(tp, rest[0]); why != "" {
			return explained(stdout, wire.EINVAL, why)
		}
		if err := route.AddMount(ctx, st, tp, rest[0], rest[1]); err != nil {
			return mountFailed(stdout, err, rest[0], rest[1])
		}
		fmt.Fprintln(stdout, "OK")
	case "del":
		if why := mountKeyTooLong(tp, rest[0]); why != "" {
			return explained(stdout, wire.EINVAL, why)
		}
		if err := route.DelMount(ctx, st, tp, rest[0]); err != nil {
			return mountFailed(stdout, err, rest[0], "")
		}
		fmt.Fprintln(stdout, "OK")
	case "cluster":
		ms, err := route.ParseMembers([]byte(strings.Join(rest[1:], " ")))
		if err != nil {
			return usageError(stderr, "route cluster: members: want 1 to route.MaxMembers (%d) of active=IP:PORT or standby=IP:PORT, "+
				"each address once, an IPv6 zone of at most route.MaxZoneLen (%d) bytes, at most one active", route.MaxMembers, route.MaxZoneLen)
		}
		for _, m := range ms {
			if err := checkPort(m.Addr); err != nil {
				return usageError(stderr, "route cluster: members: %v", err)
			}
		}
		if err := route.AddCluster(ctx, st, tp, rest[0], ms); err != nil {
			return mountFailed(stdout, err, "", rest[0])
		}
		fmt.Fprintln(stdout, "OK")
	case "resolve":
		res, err := route.ResolvePath(ctx, st, tp, rest[0])
		if code, done := c.printed(stdout, res, err); done {
			return code
		}
		fmt.Fprintf(stdout, "%s -> mount %s, sub-cluster %s, active %s\n", printableString(rest[0]), printableString(res.Prefix),
			printableString(res.Cluster), printableAddr(res.Active))
	}
	return 0
}

// mountFailed is writeFailed for a change of the mount table naming a
// mount prefix and a sub-cluster ("" for none): the route package
// refuses a prefix or a name it would not route by with EINVAL, and
// this says which rule the argument breaks.
func mountFailed(stdout io.Writer, err error, prefix, cluster string) int {
	why := ""
	switch {
	case wire.AsErrno(err) != wire.EINVAL:
	case prefix != "" && !route.ValidPrefix(prefix):
		why = fmt.Sprintf("mount prefix of %d bytes: want \"/\" or /-separated components, none empty, no trailing \"/\", "+
			"at most route.MaxPathLen (%d) bytes", len(prefix), route.MaxPathLen)
	case cluster != "" && !route.ValidClusterName(cluster):
		why = fmt.Sprintf("sub-cluster name of %d bytes: want 1 to route.MaxClusterName (%d) letters, digits, '.', '_' or '-'",
			len(cluster), route.MaxClusterName)
	}
	if why == "" {
		return writeFailed(stdout, err)
	}
	return explained(stdout, err, why)
}

// mountKeyTooLong says why the registry would refuse the key of the mount
// of prefix under tablePrefix, "" if it would not: a prefix route takes
// (up to route.MaxPathLen) can make a key past registry.MaxKeyLen, which
// the center refuses EINVAL; said here, at once, with the bound.
func mountKeyTooLong(tablePrefix, prefix string) string {
	k := route.MountKey(tablePrefix, prefix)
	if !route.ValidPrefix(prefix) || len(k) <= registry.MaxKeyLen {
		return ""
	}
	return fmt.Sprintf("mount prefix of %d bytes: its registry key (%s + the prefix) would be %d bytes, past registry.MaxKeyLen (%d)",
		len(prefix), route.MountKey(tablePrefix, ""), len(k), registry.MaxKeyLen)
}

// cmdAudit queries a router's audit trail by call name.
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	c := newCommand("audit", "ROUTER -call NAME", stderr, withClient|withJSON)
	call := c.fs.String("call", "", "call name, e.g. ns-put (required)")
	since := c.fs.String("since", "", "only calls started at or after: RFC 3339 time or a duration ago (10m)")
	client := c.fs.String("client", "", "only calls from this client IP or IP:PORT")
	limit := c.fs.Int("limit", 0, "at most this many records (default and cap: the router's)")
	pos, code, ok := c.parse(args, func(pos []string) bool { return len(pos) == 1 && *call != "" && *limit >= 0 },
		"want ROUTER and -call NAME")
	if !ok {
		return code
	}
	if *limit > route.MaxAuditLimit {
		return usageError(stderr, "audit -limit %d: at most %d", *limit, route.MaxAuditLimit)
	}
	if _, _, ok := audit.ParseClient(*client); !ok {
		return usageError(stderr, "audit -client %q: want IP or IP:PORT", *client)
	}
	f := route.AuditFilter{Call: *call, Client: *client, Limit: *limit}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			if d < 0 {
				// A duration ago: a negative one is in the future,
				// where no call started.
				return usageError(stderr, "audit -since %v: a duration ago must not be negative", d)
			}
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			f.Since = t
		} else {
			return usageError(stderr, "audit -since: want an RFC 3339 time or a duration")
		}
	}
	s, code := c.dial(pos[0])
	if code != 0 {
		return code
	}
	defer s.close()
	// Each page has its own -t: the query as a whole takes about the
	// trail's size over the router's QueryScanRate.
	f.PageTimeout = *c.cf.timeout
	es, err := route.AuditQuery(context.Background(), s.ep, s.dst, f)
	if wire.AsErrno(err) == wire.EMSGSIZE {
		// The router answers it for a record too long for the reply,
		// the client for a request too long for the datagram.
		return explained(stdout, err, fmt.Sprintf("a record of the router's does not fit a reply within -max-datagram %d "+
			"(and the router's own limit), or the request does not fit it", *c.cf.maxDg))
	}
	if code, done := c.printed(stdout, es, err); done {
		return code
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "start\tclient\tcall\tsub-cluster\tdestination\toutcome\telapsed\tparams")
	for _, e := range es {
		dest := "-" // no member was tried
		if e.Dest.IsValid() {
			dest = printableAddr(e.Dest)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Start.Format("15:04:05.000000"), printableAddr(e.Client), printableString(e.Name),
			printableString(e.Cluster), dest, e.Errno.String(), e.Elapsed, printableString(e.Params))
	}
	tw.Flush()
	return 0
}
