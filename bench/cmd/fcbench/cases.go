package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"fastcall/bench"
)

// runEnv is what every case runner gets.
type runEnv struct {
	o        bench.Options
	outDir   string
	peers    string
	trials   int
	interval time.Duration
	scale    scaleOpts
	systems  []string // calls: keys of the systems to run; nil for all of them
	grpc     bool     // calls: run the gRPC-go peer
	progress func(string)
}

// runners by case name. A runner returns an error only when fastcall's
// own measurement fails; a peer that cannot run is noted in its section.
var runners = map[string]func(*runEnv) (*section, error){
	"calls":         runCalls,
	"loss":          runLoss,
	"shm":           runShm,
	"lock":          runLock,
	"dispatch":      runDispatch,
	"detection":     runDetection,
	"route":         runRoute,
	"registry":      runRegistry,
	"regscale":      runRegScale,
	"dispatchscale": runDispatchScale,
	"scale":         runScale,
}

// errNotPicked is why a peer left out by -systems has no rows.
var errNotPicked = errors.New("not among -systems")

// writeChart writes an SVG next to RESULTS.md and links it.
func (e *runEnv) writeChart(s *section, name, title, svg string) error {
	if err := os.WriteFile(filepath.Join(e.outDir, name), []byte(svg), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(&s.md, "![%s](%s)\n\n", title, name)
	return nil
}

// tableSection makes the section of a case whose measurement returned
// data and err: on success its heading, a paragraph on how the case
// measures, and the table that table writes, with data as the section's
// data; on failure err.
func tableSection(data any, err error, heading, method string, table func(w io.Writer)) (*section, error) {
	if err != nil {
		return nil, err
	}
	s := &section{data: data}
	fmt.Fprintf(&s.md, "%s\n\n%s\n\n", heading, method)
	table(&s.md)
	fmt.Fprintln(&s.md)
	return s, nil
}

func runCalls(e *runEnv) (*section, error) {
	systems := bench.Systems()
	if e.systems != nil {
		systems, _ = bench.SystemsOf(e.systems) // checked when the flag was read
	}
	rs, err := bench.RunCalls(systems, bench.CallShapes, e.o, e.progress)
	if err != nil {
		return nil, err
	}
	s := &section{}
	grpc, gerr := []bench.CallResult(nil), errNotPicked
	if e.grpc {
		grpc, gerr = bench.RunGRPC(e.peers, e.o)
	}
	all := rs
	if gerr == nil {
		all = nil
		for _, sh := range bench.CallShapes {
			for _, r := range rs {
				if r.Shape == sh {
					all = append(all, r)
				}
			}
			for _, r := range grpc {
				if r.Shape == sh {
					all = append(all, r)
				}
			}
		}
	}
	fmt.Fprintln(&s.md, "## calls: echo of a payload, one request datagram and one reply")
	fmt.Fprintln(&s.md)
	fmt.Fprintln(&s.md, "The fastcall row calls with context.Background in checksum mode. The deadline rows call as the services do: a context.WithTimeout (2s) made for each call and cancelled after it, or one per caller for the whole round. The authenticated row runs both ends with a cluster key (keyed tags, rfcd's default). The two child-process rows run the server in a child process (this binary re-executed) and the client in this one; their rounds are interleaved with the others', and their sequential rounds run with both processes pinned to one CPU (bench/calls-context.md says why). allocs/call counts this process only: the client's and, for the in-process rows, the server's; the per-call deadline row includes context.WithTimeout's own allocations.")
	fmt.Fprintln(&s.md)
	bench.WriteCallsMarkdown(&s.md, all)
	fmt.Fprintln(&s.md)
	fmt.Fprintln(&s.md, "Targets, ratios system ÷ base from the rows above (for p50 and p99, below 1× means the system is faster):")
	fmt.Fprintln(&s.md)
	bench.WriteCallTargets(&s.md, rs)
	fmt.Fprintln(&s.md)
	if gerr != nil {
		fmt.Fprintf(&s.md, "gRPC-go not measured: %v\n\n", gerr)
	} else {
		fmt.Fprintf(&s.md, "gRPC-go runs in a separate process (`go run ./grpcecho` in bench/peers, one shared client connection, raw-bytes codec, no generated code) after the other systems, on the same machine, with the same shapes, warm-up, duration and rounds; its rounds are not interleaved with the others'.\n\n")
	}
	for _, sh := range bench.CallShapes {
		var group []bench.CallResult
		for _, r := range all {
			if r.Shape == sh {
				group = append(group, r)
			}
		}
		name := fmt.Sprintf("calls-%dx%d.svg", sh.Callers, sh.Size)
		title := fmt.Sprintf("latency CDF, %d caller(s), %d B", sh.Callers, sh.Size)
		if err := e.writeChart(s, name, title, bench.LatencySVG(title, group)); err != nil {
			return nil, err
		}
	}
	s.data = all
	return s, nil
}

func runShm(e *runEnv) (*section, error) {
	rs, err := bench.RunShm(e.o, e.progress)
	return tableSection(rs, err, "## shm: shared-memory map against a Go map with sync.RWMutex",
		"100,000 keys of 24 bytes, 64-byte values, uniformly random keys. Get copies the value out; Put replaces an existing key's value (the Go map stores a fresh copy); Range reads 100 consecutive keys from a random start (the Go map keeps a sorted key slice beside it for this). The second-process row is a child process (this binary re-executed) that opens the same file read-only and calls Get, as local readers of the registry do.",
		func(w io.Writer) { bench.WriteOpsMarkdown(w, rs, "shm.Map") })
}

func runLock(e *runEnv) (*section, error) {
	rs, err := bench.RunLock(e.o, e.progress)
	return tableSection(rs, err, "## lock: process-shared robust rwlock against sync.RWMutex",
		"An operation is one hold and its release around a one-word access. Read-mostly takes a write hold once in 100 operations, read holds otherwise. The two-process row runs this binary re-executed as a child on the same lock region (a shared file mapping), both processes measuring at once; its ns/op is the mean of the two, ops/s their sum.",
		func(w io.Writer) { bench.WriteOpsMarkdown(w, rs, "lock.RWLock") })
}

func runLoss(e *runEnv) (*section, error) {
	rs, err := bench.RunCalls(bench.LossSystems(), bench.LossShapes, e.o, e.progress)
	return tableSection(rs, err, "## loss: fastcall through a lossy link",
		"The client sends to the user-space relay of package fastcall/rfc/simnet (simnet.Relay), which forwards to the server and drops each datagram, each way, with the given probability; lost calls are retransmitted by the engine. The reference row is the same relay with no loss (the relay itself adds a hop of its own); the direct row has no relay. 64-byte echo.",
		func(w io.Writer) { bench.WriteCallsTable(w, rs, bench.LossBase) })
}

func runDispatch(e *runEnv) (*section, error) {
	ps, err := bench.RunDispatch(e.o, e.progress)
	s, err := tableSection(ps, err, "## dispatch: parallel fan-out against a serial loop",
		"One operation sends one call to each target; every target is an rfc endpoint in this process whose handler sleeps 10 ms on a worker (not Inline). node/dispatch (in-memory marker store) from Submit to Wait, against a loop that calls the targets one after another.",
		func(w io.Writer) { bench.WriteDispatchMarkdown(w, ps, e.o.Rounds) })
	if err != nil {
		return nil, err
	}
	if err := e.writeChart(s, "dispatch-fanout.svg", "fan-out time against target count", bench.FanoutSVG(ps)); err != nil {
		return nil, err
	}
	return s, nil
}

func runDetection(e *runEnv) (*section, error) {
	s := &section{}
	fmt.Fprintln(&s.md, "## detection: time to declare a killed node dead")
	fmt.Fprintln(&s.md)
	rs, err := bench.RunDetection(e.peers, e.trials, e.interval)
	if err != nil {
		fmt.Fprintf(&s.md, "Not measured: %v\n\n", err)
		s.data = map[string]string{"error": err.Error()}
		return s, nil
	}
	s.data = rs
	fmt.Fprintf(&s.md, "Three members per system on loopback (observer, helper, victim); the victim runs in a child process and is killed with SIGKILL at a random phase; the time runs from the kill until the observer declares it dead. Both detectors use the same probe interval (%v): node/heartbeat with DefaultConfig().WithInterval, hashicorp/memberlist with DefaultLANConfig and that ProbeInterval. Run by `go run ./detect -json -loss-run 0 -trials %d -interval %v` in bench/peers.\n\n",
		e.interval, e.trials, e.interval)
	bench.WriteDetectionMarkdown(&s.md, rs)
	fmt.Fprintln(&s.md)
	return s, nil
}

func runRoute(e *runEnv) (*section, error) {
	r, err := bench.RunRoute(e.o, e.progress)
	return tableSection(r, err, "## route: routed against direct calls, auditing on",
		"A namespace get of a 64-byte value: sent through the router (node/route Router, mount table in memory, every call audited to a file) or straight to the sub-cluster's active member (node/route Member). The ratio column is routed ÷ direct.",
		func(w io.Writer) { bench.WriteRouteMarkdown(w, r) })
}

func runRegistry(e *runEnv) (*section, error) {
	r, err := bench.RunRegistry(e.o, e.progress)
	return tableSection(r, err, "## registry: local SDK lookups against calls to a center; push propagation",
		"Two centers (fsync before acknowledging), a node agent writing the subscribed services into its shm map, and three registered instances of one service. The SDK reads that map in this process; the center lookup is a call over loopback.",
		func(w io.Writer) { bench.WriteRegistryMarkdown(w, r) })
}
