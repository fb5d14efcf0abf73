package route

import (
	"fastcall/wire"
)

// Call numbers, in the range reserved for the router and its members
// (wire.CallRouteBase, 0x0400-0x04FF). This list is append-only: a number,
// once used, is never reassigned. docs/ROUTE.md ("Calls") is the
// specification of each call's parameters and replies; the schemas below
// are what the receiver checks.
const (
	// CallAudit queries the router's audit trail by call name, one page
	// per reply. EINVAL for a limit of 0 or past MaxAuditLimit, or a
	// malformed client filter.
	CallAudit uint16 = wire.CallRouteBase + 0x00
	// CallRouteStats returns per-sub-cluster counters, by name, one page
	// per reply; a page starts after the last name of the page before.
	CallRouteStats uint16 = wire.CallRouteBase + 0x01

	// CallNotice tells a member that a routed call failed and who made
	// it. One-way.
	CallNotice uint16 = wire.CallRouteBase + 0x08
	// CallSetRole makes a member active (true) or standby (false). The
	// router calls it with false to fence an active member it finds dead
	// or unreachable, then with true to promote a standby; each request
	// carries the router's role epoch (0: unordered, an operator's). A
	// member refuses, ECONFLICT, a request whose epoch is below the
	// highest it has obeyed: the network delayed it past a later
	// decision; and, EINVAL, one further ahead of its clock than MaxAge.
	CallSetRole uint16 = wire.CallRouteBase + 0x09
	// CallNotices returns the last failure notices a member received,
	// newest first.
	CallNotices uint16 = wire.CallRouteBase + 0x0A

	// Namespace calls, served by a Member (direct form) and by a Router
	// (which forwards them). The first parameter is the path.
	//
	// CallNSPut writes a path. Not idempotent.
	CallNSPut uint16 = wire.CallRouteBase + 0x10
	// CallNSGet reads a path. ENOENT if absent.
	CallNSGet uint16 = wire.CallRouteBase + 0x11
	// CallNSList returns one page of the paths under a prefix, in path
	// order. A page costs the member a binary search and the paths it
	// returns, whatever the namespace's size.
	CallNSList uint16 = wire.CallRouteBase + 0x12
	// CallNSDelete deletes a path. ENOENT if absent. Not idempotent.
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
