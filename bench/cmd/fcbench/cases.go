package main

import (
	"fmt"
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
	progress func(string)
}

// runners by case name. A runner returns an error only when fastcall's
// own measurement fails; a peer that cannot run is noted in its section.
var runners = map[string]func(*runEnv) (*section, error){
	"calls":     runCalls,
	"coalesce":  runCoalesce,
	"shm":       runShm,
	"lock":      runLock,
}

// writeChart writes an SVG next to RESULTS.md and links it.
func (e *runEnv) writeChart(s *section, name, title, svg string) error {
	if err := os.WriteFile(filepath.Join(e.outDir, name), []byte(svg), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(&s.md, "![%s](%s)\n\n", title, name)
	return nil
}

func runCalls(e *runEnv) (*section, error) {
	rs, err := bench.RunCalls(bench.Systems(), bench.CallShapes, e.o, e.progress)
	if err != nil {
		return nil, err
	}
	s := &section{}
	grpc, gerr := bench.RunGRPC(e.peers, e.o)
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
	bench.WriteCallsMarkdown(&s.md, all)
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

func runCoalesce(e *runEnv) (*section, error) {
	rs, err := bench.RunCalls(bench.CoalesceSystems(), []bench.Shape{{Callers: 1, Size: 64}, {Callers: 32, Size: 64}}, e.o, e.progress)
	if err != nil {
		return nil, err
	}
	s := &section{data: rs}
	fmt.Fprintln(&s.md, "## coalesce: client-side coalescing of concurrent callers' sends (Config.CoalesceSends)")
	fmt.Fprintln(&s.md)
	bench.WriteCallsMarkdown(&s.md, rs)
	fmt.Fprintln(&s.md)
	return s, nil
}

func runShm(e *runEnv) (*section, error) {
	rs, err := bench.RunShm(e.o, e.progress)
	if err != nil {
		return nil, err
	}
	s := &section{data: rs}
	fmt.Fprintln(&s.md, "## shm: shared-memory map against a Go map with sync.RWMutex")
	fmt.Fprintln(&s.md)
	fmt.Fprintln(&s.md, "100,000 keys of 24 bytes, 64-byte values, uniformly random keys. Get copies the value out; Put replaces an existing key's value (the Go map stores a fresh copy); Range reads 100 consecutive keys from a random start (the Go map keeps a sorted key slice beside it for this). The second-process row is a child process (this binary re-executed) that opens the same file read-only and calls Get, as local readers of the registry do.")
	fmt.Fprintln(&s.md)
	bench.WriteOpsMarkdown(&s.md, rs, "shm.Map")
	fmt.Fprintln(&s.md)
	return s, nil
}

func runLock(e *runEnv) (*section, error) {
	rs, err := bench.RunLock(e.o, e.progress)
	if err != nil {
		return nil, err
	}
	s := &section{data: rs}
	fmt.Fprintln(&s.md, "## lock: process-shared robust rwlock against sync.RWMutex")
	fmt.Fprintln(&s.md)
	fmt.Fprintln(&s.md, "An operation is one hold and its release around a one-word access. Read-mostly takes a write hold once in 100 operations, read holds otherwise. The two-process row runs this binary re-executed as a child on the same lock region (a shared file mapping), both processes measuring at once; its ns/op is the mean of the two, ops/s their sum.")
	fmt.Fprintln(&s.md)
	bench.WriteOpsMarkdown(&s.md, rs, "lock.RWLock")
	fmt.Fprintln(&s.md)
	return s, nil
}
