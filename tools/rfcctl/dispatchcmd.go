package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"fastcall/node/dispatch"
	"fastcall/wire"
)

// cmdDispatch submits an operation to a dispatcher and reads its status.
func cmdDispatch(args []string, stdout, stderr io.Writer) int {
	c := newCommand("dispatch", "submit DISPATCHER -resource R -kind K -targets A,B -call CALL [-p T:V]... | status DISPATCHER ID", stderr, withClient|withJSON)
	resource := c.fs.String("resource", "", "submit: the resource the operation acts on")
	kind := c.fs.String("kind", "update", "submit: read, update or delete (decides conflicts)")
	targets := c.fs.String("targets", "", "submit: IP:PORT,IP:PORT,...")
	call := c.fs.String("call", "", "submit: call name or number sent to every target")
	deadline := c.fs.Duration("deadline", 5*time.Second, "submit: deadline of the whole operation")
	wait := c.fs.Bool("wait", true, "submit: wait for the outcome and print it")
	var ps paramList
	c.fs.Var(&ps, "p", "submit: parameter of the call TYPE:VALUE, repeatable")
	pos, code, ok := c.parse(args, func(pos []string) bool { return len(pos) >= 2 },
		"want submit DISPATCHER ... or status DISPATCHER ID")
	if !ok {
		return code
	}
	var id uint64
	var op dispatch.Op
	var err error
	switch pos[0] {
	case "submit":
		if len(pos) != 2 || *resource == "" || *targets == "" || *call == "" {
			return usageError(stderr, "dispatch submit: want DISPATCHER, -resource, -targets, -call")
		}
		if *deadline < 0 {
			return usageError(stderr, "dispatch submit: -deadline %v: must not be negative", *deadline)
		}
		k, ok := dispatch.KindByName(*kind)
		if !ok {
			return usageError(stderr, "dispatch submit: -kind %q: want read, update or delete", *kind)
		}
		no, err := callNumber(*call)
		if err != nil {
			return usageError(stderr, "dispatch submit: %v", err)
		}
		ts, err := dispatch.ParseTargets(*targets)
		if err != nil {
			return usageError(stderr, "dispatch submit: -targets: %v", err)
		}
		for _, t := range ts {
			if err := checkPort(t); err != nil {
				return usageError(stderr, "dispatch submit: -targets: %v", err)
			}
		}
		p, err := ps.params()
		if err != nil {
			return usageError(stderr, "dispatch submit: %v", err)
		}
		op = dispatch.Op{Resource: *resource, Kind: k, Call: dispatch.CallOf(no, p), Deadline: *deadline}
		for _, t := range ts {
			op.Targets = append(op.Targets, dispatch.Target{Addr: t})
		}
		if n := dispatch.SubmitSize(&op); n > *c.cf.maxDg {
			// The whole operation travels in one request datagram.
			return c.pastMaxDatagram(n, fmt.Sprintf("submit of %d targets", len(ts)))
		}
	case "status":
		if len(pos) != 3 {
			return usageError(stderr, "dispatch status: want DISPATCHER ID")
		}
		if _, err := fmt.Sscan(pos[2], &id); err != nil {
			return usageError(stderr, "dispatch status: ID: want a number")
		}
	default:
		return usageError(stderr, "dispatch: unknown verb %q (submit, status)", pos[0])
	}
	s, code := c.dial(pos[1])
	if code != 0 {
		return code
	}
	defer s.close()
	if pos[0] == "submit" {
		if id, err = dispatch.SubmitRemote(s.ctx, s.ep, s.dst, &op); err != nil {
			return submitFailed(stdout, err, &op)
		}
		if !*wait {
			fmt.Fprintf(stdout, "operation %d\n", id)
			return 0
		}
	}
	var st dispatch.Status
	if pos[0] == "submit" {
		wctx, wcancel := context.WithTimeout(context.Background(), *deadline+*c.cf.timeout)
		st, err = dispatch.WaitRemote(wctx, s.ep, s.dst, id, 20*time.Millisecond)
		wcancel()
	} else {
		st, err = dispatch.StatusRemote(s.ctx, s.ep, s.dst, id)
	}
	if wire.AsErrno(err) == wire.EMSGSIZE {
		// The dispatcher answers it when not even the head of a status
		// page, or one target's outcome, fits the reply; the request
		// asks for one of up to -max-datagram.
		return explained(stdout, err, fmt.Sprintf("the operation's status (its resource, or one target's outcome) does not fit a reply within "+
			"-max-datagram %d (and the dispatcher's own limit)", *c.cf.maxDg))
	}
	if err != nil {
		return callFailed(stdout, err)
	}
	if *c.asJSON {
		printJSON(stdout, st)
	} else {
		fmt.Fprintf(stdout, "operation %d on %s (%s): %s, %d/%d targets done, %d failed, %s\n", st.ID, printableString(st.Resource), st.Kind, st.State,
			st.Done, st.Targets, st.Failed, st.Elapsed.Round(time.Microsecond))
		tw := newTable(stdout)
		for _, o := range st.Outcomes {
			out := "pending"
			if o.Done {
				out = o.Errno.String()
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", printableAddr(o.Addr), out, o.Elapsed.Round(time.Microsecond))
		}
		tw.Flush()
	}
	if st.Failed > 0 {
		return 1
	}
	return 0
}

// submitFailed is callFailed for a refused submit of op: for ENOSPC,
// EINVAL and EPERM it names the bound or rule op broke, with the value
// rfcd's dispatcher takes (the package defaults), and exits 1 all the
// same.
func submitFailed(stdout io.Writer, err error, op *dispatch.Op) int {
	why := ""
	switch wire.AsErrno(err) {
	case wire.ENOSPC:
		// Within MaxRemoteTargets (at most MaxTargets), the
		// resource's conflict marker is full, or its store had no
		// room for a new marker.
		why = fmt.Sprintf("resource %s is held by the dispatcher's MaxHolders operations (%d in rfcd), or its marker store "+
			"is full (the registry centers' MaxKeys keys; without a registry, dispatch.DefaultMemStoreKeys, %d)",
			printableString(op.Resource), dispatch.DefaultMaxHolders, dispatch.DefaultMemStoreKeys)
		if len(op.Targets) > dispatch.DefaultMaxRemoteTargets {
			why = fmt.Sprintf("%d targets, past the dispatcher's MaxRemoteTargets (%d in rfcd)", len(op.Targets), dispatch.DefaultMaxRemoteTargets)
		}
	case wire.EINVAL:
		switch {
		case len(op.Resource) > dispatch.MaxResource:
			why = fmt.Sprintf("a resource of %d bytes, past dispatch.MaxResource (%d)", len(op.Resource), dispatch.MaxResource)
		case op.Deadline > dispatch.DefaultMaxRemoteDeadline:
			why = fmt.Sprintf("-deadline %v, past the dispatcher's MaxRemoteDeadline (%v in rfcd)", op.Deadline, dispatch.DefaultMaxRemoteDeadline)
		}
	case wire.EPERM:
		// The dispatcher's two rules on a remote submit
		// (docs/DISPATCH.md, "Remote SUBMIT is restricted").
		why = "a target not on the dispatcher's list of targets (rfcd: dispatcher.targets, or heartbeat.members when it is empty)"
		if op.Call.No >= wire.CallHeartbeatBase && op.Call.No < wire.CallToolBase {
			why = fmt.Sprintf("call 0x%04x is one of fastcall's own services (0x%04x up to wire.CallToolBase, 0x%04x), which a remote submit may not name",
				op.Call.No, wire.CallHeartbeatBase, wire.CallToolBase)
		}
	}
	return explained(stdout, err, why)
}
