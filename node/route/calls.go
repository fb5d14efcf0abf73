package route

import (
	"fastcall/wire"
)

// Call numbers, in the range reserved for the router and its members
// (wire.CallRouteBase, 0x0400-0x04FF). This list is append-only: a number,
// once used, is never reassigned. docs/ROUTE.md documents every schema.
const (
	// CallAudit queries the router's audit trail by call name. Request:
	// str call name, u64 since (Unix ns of the record's start, 0: no
	// bound), u64 until (Unix ns, exclusive, 0: no bound), str client
	// ("" any; "ip" or "ip:port"), u64 limit (records still wanted, 1 to
	// MaxAuditLimit), u64 cursor file, u64 cursor offset (0, 0 for the
	// first page), bytes padding. Reply: u64 next cursor file, u64 next
	// cursor offset (both 0: no more), then per record: str audit line
	// (the line as stored, without its newline). EINVAL for a limit of 0
	// or past MaxAuditLimit, or a malformed client filter.
	CallAudit uint16 = wire.CallRouteBase + 0x00
	// CallRouteStats returns per-sub-cluster counters, by name. Request:
	// str after (the last name of the page before; "" first), bytes
	// padding. Reply: u64 more (1: another page follows; 0: last page),
	// then per sub-cluster named strictly after "after", in ascending
	// order: str name, u64 calls, u64 errors, u64
	// failovers, u64 dropped audit records (same value in every entry),
	// u64 p50 µs, u64 p99 µs, bytes histogram (HistBuckets big-endian
	// u64 counts; bucket i counts latencies below 2^i µs and at least
	// 2^(i-1) µs).
	CallRouteStats uint16 = wire.CallRouteBase + 0x01

	// CallNotice tells a member that a routed call failed and who made
	// it. One-way. Request: u64 client node id, str client address, u64
	// client call id, u64 call number, str call name, u64 error number,
	// str path, u64 time (Unix ns).
	CallNotice uint16 = wire.CallRouteBase + 0x08
	// CallSetRole makes a member active (true) or standby (false). The
	// router calls it with false to fence an active member it finds dead
	// or unreachable, then with true to promote a standby. Request: bool
	// active, u64 epoch (the router's role epoch, growing with every
	// request it sends, across its restarts; 0: unordered, an operator's).
	// Reply: bool previous role (true: was active). A member refuses,
	// ECONFLICT, a request whose epoch is below the highest it has obeyed:
	// the network delayed it past a later decision.
	CallSetRole uint16 = wire.CallRouteBase + 0x09
	// CallNotices returns the last failure notices a member received,
	// newest first. Request: u64 skip, bytes padding. Reply: u64 total
	// held, then per notice: u64 time (Unix ns), str client address, u64
	// client node, u64 client call id, str call name, u64 error number,
	// str path.
	CallNotices uint16 = wire.CallRouteBase + 0x0A

	// Namespace calls, served by a Member (direct form) and by a Router
	// (which forwards them). The first parameter is the path.
	//
	// CallNSPut: str path, bytes value -> u64 version (a member-wide
	// counter of writes). Not idempotent.
	CallNSPut uint16 = wire.CallRouteBase + 0x10
	// CallNSGet: str path -> bytes value, u64 version. ENOENT if absent.
	CallNSGet uint16 = wire.CallRouteBase + 0x11
	// CallNSList: str prefix, str after (the last path of the page
	// before; "" for the first), u64 limit (0: as many as fit), bytes
	// padding -> u64 more (1: the page was cut; ask again after its last
	// path), then str path per entry, in path order, paths strictly
	// after "after". A page costs the member a binary search and the
	// paths it returns, whatever the namespace's size.
	CallNSList uint16 = wire.CallRouteBase + 0x12
	// CallNSDelete: str path -> u64 version. ENOENT if absent. Not
	// idempotent.
	CallNSDelete uint16 = wire.CallRouteBase + 0x13

	// RoutedOffset is added to a routed call's number to get the number
	// the router forwards it as. The forwarded request carries ContextParams
	// leading parameters (u64 client node id, str client address, u64
	// client call id) before the client's own parameters. Routed call
	// numbers therefore lie in 0x0410-0x042F and their forwarded forms
	// in 0x0430-0x044F.
	RoutedOffset = 0x20
	// ContextParams is the number of leading client-context parameters of
	// a forwarded request.
	ContextParams = 3
)

// Bounds of the audit query.
const (
	// MaxAuditLimit bounds the records one audit query may ask for; a
	// larger limit is answered EINVAL.
	MaxAuditLimit = 10000
	// DefaultAuditLimit is what AuditQuery asks for when the caller
	// passes 0.
	DefaultAuditLimit = 100
	// MaxPathLen bounds a routed path.
	MaxPathLen = 1024
)

// contextSchema is the schema of the leading client-context parameters.
var contextSchema = wire.Schema{wire.TypeUint64, wire.TypeString, wire.TypeUint64}

// Schemas of the namespace calls in their direct form.
var (
	schemaNSPut    = wire.Schema{wire.TypeString, wire.TypeBytes}
	schemaNSGet    = wire.Schema{wire.TypeString}
	schemaNSList   = wire.Schema{wire.TypeString, wire.TypeString, wire.TypeUint64, wire.TypeBytes}
	schemaNSDelete = wire.Schema{wire.TypeString}
	schemaNotice   = wire.Schema{wire.TypeUint64, wire.TypeString, wire.TypeUint64, wire.TypeUint64,
		wire.TypeString, wire.TypeUint64, wire.TypeString, wire.TypeUint64}
	schemaSetRole = wire.Schema{wire.TypeBool, wire.TypeUint64}
	schemaAudit   = wire.Schema{wire.TypeString, wire.TypeUint64, wire.TypeUint64, wire.TypeString,
		wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
)

// RoutedCall declares a call number the router forwards. Its first
// parameter must be a str path. Schema is the client's form; the member
// registers No+RoutedOffset with ForwardedSchema(Schema). Idempotent
// states what the members register (rfc.Idempotent): only an idempotent
// call is forwarded again after an attempt whose outcome is unknown.
type RoutedCall struct {
	No         uint16
	Name       string
	Schema     wire.Schema
	Idempotent bool
}

// NamespaceCalls returns the routed declarations of the namespace calls,
// the default Config.Calls.
func NamespaceCalls() []RoutedCall {
	return []RoutedCall{
		{No: CallNSPut, Name: "ns-put", Schema: schemaNSPut},
		{No: CallNSGet, Name: "ns-get", Schema: schemaNSGet, Idempotent: true},
		{No: CallNSList, Name: "ns-list", Schema: schemaNSList, Idempotent: true},
		{No: CallNSDelete, Name: "ns-delete", Schema: schemaNSDelete},
	}
}

// ForwardedSchema returns the schema of the forwarded form of a routed
// call: the client context, then the client's parameters.
func ForwardedSchema(s wire.Schema) wire.Schema {
	out := make(wire.Schema, 0, len(contextSchema)+len(s))
	out = append(out, contextSchema...)
	return append(out, s...)
}
