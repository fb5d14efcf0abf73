package rfc

import (
	"slices"
	"strings"
	"unicode/utf8"

	"fastcall/wire"
)

// The engine's own call numbers. docs/PROTOCOL.md ("Engine calls") is
// the specification of their parameters, replies and paging; the schemas
// registerBuiltins passes are what the receiver checks. Every call but
// CallPing ends its request with padding: a reply to an unauthenticated
// request is at most AmplifyFactor times the request's size, so such a
// client pads to get full pages.
const (
	// CallPing answers with no parameters. Idempotent, inline.
	CallPing uint16 = wire.CallEngineBase + 0
	// CallStats returns the counters of the call numbers served and
	// called, one page per reply, in call-number order from the
	// request's cursor.
	CallStats uint16 = wire.CallEngineBase + 1
	// CallEngineStats returns endpoint-wide counters as name and value
	// pairs.
	CallEngineStats uint16 = wire.CallEngineBase + 2
	// CallCalls lists the registered call numbers, like rpcinfo, one page
	// per reply as for CallStats: per call number, its name, schema and
	// CallInfo flag bits.
	CallCalls uint16 = wire.CallEngineBase + 3
)

// CallInfo flag bits in a CallCalls reply. The low bits equal CallFlags.
const (
	InfoIdempotent = uint64(Idempotent)
	InfoOneWay     = uint64(OneWay)
	InfoInline     = uint64(Inline)
	InfoPriority   = uint64(Priority)
	InfoDeferred   = uint64(1) << 4 // registered with RegisterDeferred
)

// CallInfo describes one registered call number.
type CallInfo struct {
	CallNo uint16
	Name   string
	Schema wire.Schema
	Flags  CallFlags
	// Deferred is set for calls registered with RegisterDeferred.
	Deferred bool
}

// Calls returns the registered call numbers in ascending order.
func (ep *Endpoint) Calls() []CallInfo {
	m := *ep.calls.Load()
	out := make([]CallInfo, 0, len(m))
	for _, ce := range m {
		out = append(out, CallInfo{CallNo: ce.no, Name: ce.name, Schema: append(wire.Schema(nil), ce.schema...),
			Flags: ce.flags, Deferred: ce.dh != nil})
	}
	slices.SortFunc(out, func(a, b CallInfo) int { return int(a.CallNo) - int(b.CallNo) })
	return out
}

func (ep *Endpoint) registerBuiltins() {
	_ = ep.register(CallPing, "ping", nil, Idempotent|Inline|Priority, func(*Request, *wire.Params) wire.Errno { return wire.OK })
	_ = ep.register(CallStats, "stats", wire.Schema{wire.TypeUint64, wire.TypeBytes}, Idempotent, ep.serveStats)
	_ = ep.register(CallEngineStats, "engine-stats", wire.Schema{wire.TypeBytes}, Idempotent, ep.serveEngineStats)
	_ = ep.register(CallCalls, "calls", wire.Schema{wire.TypeUint64, wire.TypeBytes}, Idempotent, ep.serveCalls)
	ep.stats.calls = &ep.calls
}

// nameMax bounds a call name in the CallStats and CallCalls replies.
const nameMax = 48

// cutName returns name cut to at most nameMax bytes at a rune boundary,
// each byte that is not UTF-8 replaced by '?' first, so that the page's
// str parameter is valid UTF-8 whatever name was registered.
func cutName(name string) string {
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "?")
	}
	if len(name) <= nameMax {
		return name
	}
	n := nameMax
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return name[:n]
}

// callsEntryMax bounds the bytes of one CallCalls entry: u64 number, a
// name of at most nameMax bytes, a schema of at most MaxParams bytes,
// u64 flags.
const (
	callsEntryMax    = 2*wire.ParamFixed8Size + 2*wire.ParamHdrSize + nameMax + wire.MaxParams
	callsEntryParams = 4
)

func (ep *Endpoint) serveCalls(req *Request, reply *wire.Params) wire.Errno {
	cis := ep.Calls()
	var schema [wire.MaxParams]byte
	no := func(i int) uint16 { return cis[i].CallNo }
	return writePage(req, reply, len(cis), no, callsEntryMax, callsEntryParams, func(i int) {
		ci := &cis[i]
		flags := uint64(ci.Flags)
		if ci.Deferred {
			flags |= InfoDeferred
		}
		for j, t := range ci.Schema {
			schema[j] = byte(t)
		}
		reply.Uint64(uint64(ci.CallNo))
		reply.String(cutName(ci.Name))
		reply.Bytes(schema[:len(ci.Schema)])
		reply.Uint64(flags)
	})
}

// writePage writes one page of a CallStats or CallCalls reply: the next
// cursor, then the entries of call numbers no(0) to no(n-1) (ascending)
// from the request's cursor, each written by put, while one more entry
// counted at its largest size (entryMax bytes, entryParams parameters)
// fits the reply. The next cursor is the number of the first entry left
// out, 0 when the page reaches the end. A reply that cannot hold one entry
// is EMSGSIZE: a page without entries would send the client back to the
// same cursor.
func writePage(req *Request, reply *wire.Params, n int, no func(i int) uint16, entryMax, entryParams int, put func(i int)) wire.Errno {
	cursor := req.Param(0).Uint64()
	nextAt := reply.ReserveUint64() // the next cursor, known after the page
	next := uint64(0)
	entries := 0
	for i := 0; i < n; i++ {
		if uint64(no(i)) < cursor {
			continue
		}
		if reply.Len()+entryMax > reply.Cap() || reply.Count()+entryParams > wire.MaxParams {
			if entries == 0 {
				return wire.EMSGSIZE
			}
			next = uint64(no(i))
			break
		}
		entries++
		put(i)
	}
	reply.SetUint64(nextAt, next)
	return wire.OK
}

// statsEntryMax bounds the bytes of one CallStats entry so a page never
// overflows: 9 u64 values and a name of at most nameMax bytes.
const (
	statsEntryMax    = 9*wire.ParamFixed8Size + wire.ParamHdrSize + nameMax
	statsEntryParams = 10
)

func (ep *Endpoint) serveStats(req *Request, reply *wire.Params) wire.Errno {
	st := ep.Stats()
	type row struct {
		no                uint16
		served, servedErr uint64
		called, calledErr uint64
		retrans, dups     uint64
		p50, p99          uint64
	}
	rows := map[uint16]*row{}
	var order []uint16
	get := func(no uint16) *row {
		r := rows[no]
		if r == nil {
			r = &row{no: no}
			rows[no] = r
			order = append(order, no)
		}
		return r
	}
	sum := func(m map[wire.Errno]uint64) (t uint64) {
		for _, v := range m {
			t += v
		}
		return t
	}
	for _, c := range st.Served {
		r := get(c.CallNo)
		r.served, r.servedErr, r.dups, r.p50, r.p99 = c.Calls, sum(c.Errors), c.Dups, c.P50us, c.P99us
	}
	for _, c := range st.Called {
		r := get(c.CallNo)
		r.called, r.calledErr, r.retrans = c.Calls, sum(c.Errors), c.Retrans
		r.p50, r.p99 = c.P50us, c.P99us
	}
	slices.Sort(order)
	no := func(i int) uint16 { return order[i] }
	return writePage(req, reply, len(order), no, statsEntryMax, statsEntryParams, func(i int) {
		r := rows[order[i]]
		reply.Uint64(uint64(r.no))
		reply.String(cutName(statsName(r.no, ep.CallName(r.no))))
		reply.Uint64(r.served)
		reply.Uint64(r.servedErr)
		reply.Uint64(r.called)
		reply.Uint64(r.calledErr)
		reply.Uint64(r.retrans)
		reply.Uint64(r.dups)
		reply.Uint64(r.p50)
		reply.Uint64(r.p99)
	})
}

func (ep *Endpoint) serveEngineStats(req *Request, reply *wire.Params) wire.Errno {
	st := ep.Stats()
	put := func(name string, v uint64) {
		reply.String(name)
		reply.Uint64(v)
	}
	put("node", uint64(st.Node))
	put("incarnation", uint64(st.Incarnation))
	put("rx", st.Rx)
	put("tx", st.Tx)
	put("send-errors", st.SendErrors)
	put("pending", uint64(st.Pending))
	put("dup-entries", uint64(st.DupEntries))
	put("peers", uint64(st.Peers))
	put("peer-deaths", ep.stats.peerDeaths.Load())
	put("peer-suspects", ep.stats.peerSuspects.Load())
	// Drop counters in name order, so that a reply cut at MaxParams
	// always leaves off the same ones.
	names := make([]string, 0, len(st.Drops))
	for name := range st.Drops {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if reply.Count()+2 > wire.MaxParams {
			break
		}
		put("drop-"+name, st.Drops[name])
	}
	return wire.OK
}
