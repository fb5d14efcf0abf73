package main

import (
	"fmt"
	"io"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/sdk"
	"fastcall/wire"
)

// cmdReg talks to the registry centers: the key/value store (ls, get, put,
// del), service instances (services) and change streams (watch).
func cmdReg(args []string, stdout, stderr io.Writer) int {
	c := newCommand("reg", "ls [PREFIX] | get KEY | put KEY VALUE | del KEY | services [PREFIX] | watch PREFIX", stderr, withClient|withJSON|withCenters)
	ttl := c.fs.Duration("ttl", 0, "put: time to live (0: none)")
	expect := c.fs.Uint64("expect", 0, "put: compare-and-set against this version (with -cas); del: delete only this version")
	cas := c.fs.Bool("cas", false, "put: compare-and-set with -expect (0: the key must not exist)")
	watchFor := c.fs.Duration("for", 5*time.Second, "watch: how long to print changes")
	verb, rest, code, ok := c.parseVerb(args)
	if !ok {
		return code
	}
	switch {
	case *ttl < 0:
		return usageError(stderr, "reg -ttl %v: must not be negative", *ttl)
	case *ttl > registry.MaxTTL:
		return usageError(stderr, "reg -ttl %v: past registry.MaxTTL (%v, %d days): EINVAL", *ttl, registry.MaxTTL, registry.MaxTTL/(24*time.Hour))
	case verb == "put" && *expect != 0 && !*cas:
		return usageError(stderr, "reg put: -expect needs -cas")
	case verb == "watch" && *watchFor <= 0:
		return usageError(stderr, "reg watch -for %v: must be positive", *watchFor)
	}
	if verb == "put" || verb == "del" {
		// The centers refuse these (EINVAL, EMSGSIZE); refused here,
		// the bound is named.
		if n := len(sdk.KVPrefix) + len(rest[0]); n > registry.MaxKeyLen {
			return usageError(stderr, "reg %s: key of %d bytes, past registry.MaxKeyLen (%d bytes with the %q prefix): EINVAL",
				verb, len(rest[0]), registry.MaxKeyLen, sdk.KVPrefix)
		}
	}
	if verb == "put" {
		n := len(sdk.KVPrefix) + len(rest[0]) + sdk.RecordSize(&sdk.Record{Kind: sdk.KindKV, Body: []byte(rest[1])})
		if max := registry.MaxEntry(*c.cf.maxDg); n > max {
			return usageError(stderr, "reg put: key and value make a %d-byte entry, past registry.MaxEntry (%d bytes at -max-datagram %d): EMSGSIZE",
				n, max, *c.cf.maxDg)
		}
	}
	s, cli, code := c.dialRegistry()
	if code != 0 {
		return code
	}
	defer s.close()
	ctx, asJSON := s.ctx, c.asJSON
	arg := func(i int) string {
		if i < len(rest) {
			return rest[i]
		}
		return ""
	}
	switch verb {
	case "ls":
		// Every page, or a failure: never a list cut short.
		all, err := cli.ListAll(ctx, arg(0))
		if err != nil {
			return callFailed(stdout, err)
		}
		if *asJSON {
			printJSON(stdout, all)
			return 0
		}
		tw := newTable(stdout)
		fmt.Fprintln(tw, "key\tversion\tvalue")
		for _, e := range all {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", printableString(e.Key), e.Version, printable(e.Value))
		}
		tw.Flush()
	case "get":
		e, err := cli.Get(ctx, arg(0))
		if code, done := c.printed(stdout, e, err); done {
			return code
		}
		fmt.Fprintf(stdout, "%s\nversion %d\n", printable(e.Value), e.Version)
	case "put":
		var v uint64
		var err error
		if *cas {
			v, err = cli.CAS(ctx, arg(0), *expect, []byte(arg(1)), *ttl)
		} else {
			v, err = cli.Put(ctx, arg(0), []byte(arg(1)), *ttl)
		}
		if err != nil {
			return writeFailed(stdout, err)
		}
		fmt.Fprintf(stdout, "OK version %d\n", v)
	case "del":
		if err := cli.Delete(ctx, arg(0), *expect); err != nil {
			return callFailed(stdout, err)
		}
		fmt.Fprintln(stdout, "OK")
	case "services":
		is, err := cli.LookupPrefix(ctx, arg(0))
		if err == wire.ENOENT {
			err = nil // no instance: an empty list
		}
		if code, done := c.printed(stdout, is, err); done {
			return code
		}
		printInstances(stdout, is)
	case "watch":
		ch := make(chan string, 1024)
		w, err := cli.Watch([]string{arg(0)}, func(c client.Change) {
			s := "put"
			if c.Deleted {
				s = "del"
			}
			select {
			case ch <- fmt.Sprintf("%s %s version %d", s, printableString(c.Key), c.Version):
			default:
			}
		})
		if err != nil {
			return callFailed(stdout, err)
		}
		defer w.Close()
		end := time.After(*watchFor)
		// The watch subscribes in the background: a refusal shows only
		// in w.Err, and without a look the command printed nothing and
		// ended 0, as if no key had changed.
		poll := time.NewTicker(watchErrPoll)
		defer poll.Stop()
		for {
			select {
			case l := <-ch:
				fmt.Fprintln(stdout, l)
			case <-poll.C:
				if err := w.Err(); err != nil {
					return watchFailed(stdout, err)
				}
			case <-end:
				if err := w.Err(); err != nil {
					return watchFailed(stdout, err)
				}
				return 0
			}
		}
	}
	return 0
}

// watchErrPoll is how often reg watch looks for a refused subscription.
const watchErrPoll = 50 * time.Millisecond

// watchFailed is callFailed for reg watch: ENOSPC is the centers' bounds
// on push streams, which it names.
func watchFailed(stdout io.Writer, err error) int {
	if wire.AsErrno(err) != wire.ENOSPC {
		return callFailed(stdout, err)
	}
	return explained(stdout, err, fmt.Sprintf("the centers refused the subscription, past one of their bounds on push streams "+
		"(center.Config MaxStreamsPerNode %d, MaxPrefixesPerNode %d, MaxStreamsPerIP %d, MaxStreams %d by default)",
		center.DefaultMaxStreamsPerNode, center.DefaultMaxPrefixesPerNode, center.DefaultMaxStreamsPerIP, center.DefaultMaxStreams))
}

// writeFailed is callFailed for a write of a new key to the registry's
// store (reg put, route add and cluster): ENOSPC there is no full disk
// but the centers' bound on keys, which it names.
func writeFailed(stdout io.Writer, err error) int {
	if wire.AsErrno(err) != wire.ENOSPC {
		return callFailed(stdout, err)
	}
	return explained(stdout, err, fmt.Sprintf("the centers hold their MaxKeys keys, deleted ones included (center.Config.MaxKeys, %d by default)",
		center.DefaultMaxKeys))
}

func printInstances(w io.Writer, is []sdk.Instance) {
	tw := newTable(w)
	fmt.Fprintln(tw, "service\taddr\tnode\towner\tmeta")
	for _, i := range is {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", printableString(i.Name), printableString(i.Addr), i.Node,
			printableString(i.Owner), printable(i.Meta))
	}
	tw.Flush()
}
