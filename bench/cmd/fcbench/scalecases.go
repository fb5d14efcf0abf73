package main

import (
	"io"
	"strconv"
	"strings"

	"fastcall/bench"
)

func runRegScale(e *runEnv) (*section, error) {
	ps, err := bench.RunRegScale(e.o, e.progress)
	return tableSection(ps, err, "## regscale: registry pushes to many subscribed agents, real endpoints on loopback",
		"Two centers (default configuration, fsync before acknowledging) run in a child process (this binary re-executed); the agents run in this process, each on its own rfc endpoint bound to its own loopback address (127.1.x.y) with its own shm map, all watching \"svc/\" (so all at the first center). A node registers one new instance at a time, alternately first at either center (the other replicates it), 20 ms apart; the time runs from the start of Register until every agent's map holds the instance (every map, over the registrations) or until one agent's does (one map, over every agent of every registration), and until Register returns (acknowledged: on disk at both centers); the maps are read every 20 µs. 5 registrations warm up unmeasured. Centers' CPU: the child's user + system time (getrusage) over the measured registrations, divided by their wall time; idle: the same length of time right after, with no registration (the agents' keepalives alone); per registration: (busy − idle) ÷ registrations. The agents' process CPU is this process's (agents, the registering node and the polling reader). Load average: the machine's, at the end of the count's run.",
		func(w io.Writer) { bench.WriteRegScaleMarkdown(w, ps) })
}

// parseCounts parses "50,200": positive counts, comma-separated; nil if
// one is not.
func parseCounts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil
		}
		out = append(out, n)
	}
	return out
}

func joinInts(v []int) string {
	f := make([]string, len(v))
	for i, n := range v {
		f[i] = strconv.Itoa(n)
	}
	return strings.Join(f, ",")
}

func runDispatchScale(e *runEnv) (*section, error) {
	ps, err := bench.RunDispatchScale(e.o, e.progress)
	return tableSection(ps, err, "## dispatchscale: one operation fanned out to many targets, real endpoints on loopback",
		"node/dispatch (default configuration, in-memory marker store) in this process; the targets, each its own rfc endpoint whose handler answers at once on a worker, in a child process (this binary re-executed). One operation at a time to every target, 10 ms apart, 5 unmeasured first; the time runs from Submit until Wait returns with every target's reply gathered. CPU: this process's user + system time (getrusage) over the measured operations, divided by their count: the dispatcher, its endpoint and the submitting loop. Datagrams: the dispatcher endpoint's sent and received (retransmissions included). Kernel drops: /proc/net/udp's count at the dispatcher's socket and at the targets' over the measured operations. Load average: the machine's, at the end of the count's run.",
		func(w io.Writer) { bench.WriteDispatchScaleMarkdown(w, ps) })
}
