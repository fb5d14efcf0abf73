package linz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"fastcall/wire"

	"github.com/anishathalye/porcupine"
)

// History records operations from any number of goroutines. Times are
// nanoseconds since the History was made (monotonic clock).
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewHistory returns an empty history starting now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now returns the history's clock.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// ResultOf classifies an error of the registry Client: nil, ECONFLICT and
// ENOENT are definite, anything else leaves the outcome unknown.
func ResultOf(err error) Result {
	var e wire.Errno
	switch {
	case err == nil:
		return OK
	case errors.As(err, &e) && e == wire.ECONFLICT:
		return Conflict
	case errors.As(err, &e) && e == wire.ENOENT:
		return NoEnt
	}
	return Unknown
}

// Add records one operation of client, called at call and returned at
// ret (History.Now). An operation whose outcome is unknown is recorded as
// returning never: it may take effect at any moment after its call.
func (h *History) Add(client int, in Input, out Output, call, ret int64) {
	if out.Result == Unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// Len returns the number of operations recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Counts returns how many operations ended with each result.
func (h *History) Counts() [Unknown + 1]int {
	var n [Unknown + 1]int
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, op := range h.ops {
		n[op.Output.(Output).Result]++
	}
	return n
}

// Check checks the history for linearizability, giving up after timeout
// (porcupine.Unknown). If vis is not nil and the history is not
// linearizable, a visualization (HTML) of the longest linearizable
// prefixes is written to it.
func (h *History) Check(timeout time.Duration, vis io.Writer) porcupine.CheckResult {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	m := Model()
	res, info := porcupine.CheckOperationsVerbose(m, ops, timeout)
	if res == porcupine.Illegal && vis != nil {
		porcupine.Visualize(m, info, vis)
	}
	return res
}

// Run runs one operation through do, which returns the output's value
// and version and the Client's error, and records it.
func (h *History) Run(ctx context.Context, client int, in Input, do func(ctx context.Context) (string, uint64, error)) Output {
	call := h.Now()
	v, ver, err := do(ctx)
	ret := h.Now()
	out := Output{Result: ResultOf(err)}
	if out.Result == OK {
		out.Value, out.Version = v, ver
	}
	h.Add(client, in, out, call, ret)
	return out
}

// Explain writes, for a history that is not linearizable, the end of the
// longest linearizable prefix of each failing key and the operations
// that could not follow it, in call order, for a person to read.
func (h *History) Explain(w io.Writer) {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	m := Model()
	res, info := porcupine.CheckOperationsVerbose(m, ops, 0)
	if res != porcupine.Illegal {
		return
	}
	desc := func(op porcupine.Operation) string {
		ret := "never"
		if op.Return != math.MaxInt64 {
			ret = fmt.Sprintf("%.3fms", float64(op.Return)/1e6)
		}
		return fmt.Sprintf("client %d [%.3fms, %s] %s", op.ClientId, float64(op.Call)/1e6, ret,
			m.DescribeOperation(op.Input, op.Output))
	}
	perKey := map[string]int{}
	for _, op := range ops {
		perKey[op.Input.(Input).Key]++
	}
	for _, part := range info.PartialLinearizationsOperations() {
		var best []porcupine.Operation
		for _, l := range part {
			if len(l) > len(best) {
				best = l
			}
		}
		if len(best) == 0 || len(best) == perKey[best[0].Input.(Input).Key] {
			continue
		}
		in := map[int64]map[int]bool{}
		for _, op := range best {
			if in[op.Call] == nil {
				in[op.Call] = map[int]bool{}
			}
			in[op.Call][op.ClientId] = true
		}
		fmt.Fprintf(w, "key %s: longest linearizable prefix: %d of %d operations; its end:\n",
			best[0].Input.(Input).Key, len(best), perKey[best[0].Input.(Input).Key])
		for _, op := range best[max(0, len(best)-12):] {
			fmt.Fprintln(w, "  "+desc(op))
		}
		var rest []porcupine.Operation
		key := ""
		if len(best) > 0 {
			key = best[0].Input.(Input).Key
		}
		for _, op := range ops {
			if op.Input.(Input).Key == key && !in[op.Call][op.ClientId] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
		fmt.Fprintln(w, "operations not linearized, first in call order:")
		for _, op := range rest[:min(len(rest), 16)] {
			fmt.Fprintln(w, "  "+desc(op))
		}
	}
}
