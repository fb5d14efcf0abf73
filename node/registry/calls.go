package registry

import (
	"fastcall/node/registry/sdk"
	"fastcall/wire"
)

// Call numbers, in the range reserved for the registry
// (wire.CallRegistryBase, 0x0200-0x02FF). This list is append-only: a
// number, once used, is never reassigned. docs/REGISTRY.md ("Call
// numbers") is the specification of each call's parameters and replies;
// the schemas below are what the receiver checks. Keys are full keys of
// the registry namespace ("svc/...", "kv/..."); records are encoded as
// package sdk defines (sdk.AppendRecord).
//
// Calls whose reply can be large end with a bytes padding parameter: the
// engine caps a reply to an unauthenticated request at rfc.AmplifyFactor
// times the request's size, so a client in checksum mode pads its request
// to a third of the datagram limit.
const (
	// CallGet reads one entry. ENOENT if absent, deleted or expired.
	CallGet uint16 = wire.CallRegistryBase + 0x00
	// CallPut writes a key/value entry under "kv/", plainly or as a
	// compare-and-set (PutPlain, PutCAS). ECONFLICT on a version
	// mismatch, EMSGSIZE if the entry would not fit one push datagram,
	// EAGAIN if the other center could not be reached and is not
	// declared dead. An operation found applied before is answered with
	// the version it made.
	CallPut uint16 = wire.CallRegistryBase + 0x01
	// CallDelete deletes a key/value entry; the reply is the version of
	// its tombstone. ENOENT if absent, ECONFLICT on a version mismatch.
	CallDelete uint16 = wire.CallRegistryBase + 0x02
	// CallList returns one page of entries in key order. A page examines
	// at most ListScan keys: one of a prefix that holds many deleted or
	// expired entries may return none and a next key among them
	// (ListNext reads the key to resume after).
	CallList uint16 = wire.CallRegistryBase + 0x03
	// CallRegister registers (or replaces) the caller's instance of a
	// service; the instance is keyed by the request's source node id,
	// which must not be 0.
	CallRegister uint16 = wire.CallRegistryBase + 0x04
	// CallDeregister removes the caller's instance. ENOENT if absent.
	CallDeregister uint16 = wire.CallRegistryBase + 0x05
	// CallRenew renews the lease of every instance registered from the
	// caller's address. ENOENT if there is none (the caller registers
	// again).
	CallRenew uint16 = wire.CallRegistryBase + 0x06

	// CallSubscribe adds a prefix to a push stream, opening the stream
	// if it is new. ENOSPC past Config.MaxStreamsPerNode,
	// Config.MaxPrefixesPerNode, Config.MaxStreamsPerIP or
	// Config.MaxStreams. Pushes go to the request's source address, and
	// only once the subscriber has echoed the stream's cookie in a
	// CallSubCheck (return routability: the cookie reaches only a reader
	// at that address).
	CallSubscribe uint16 = wire.CallRegistryBase + 0x10
	// CallUnsubscribe closes a stream. ENOENT if unknown.
	CallUnsubscribe uint16 = wire.CallRegistryBase + 0x11
	// CallSubCheck is a subscriber's keepalive; it renews the stream
	// (Config.StreamIdle) and, the first time, proves it: pushes start.
	// ESTALE if the center does not know the stream (it restarted, or
	// dropped it) or the cookie is not the stream's: the subscriber
	// resynchronizes.
	CallSubCheck uint16 = wire.CallRegistryBase + 0x12
	// CallPush (center to subscriber) carries a batch of changes.
	// ESTALE: unknown stream (the center drops it); EAGAIN: the
	// subscriber saw a gap and is resynchronizing on a new stream (the
	// center drops this one).
	CallPush uint16 = wire.CallRegistryBase + 0x13

	// CallReplicate (center to center) applies a write made at the other
	// center. The receiver has applied and logged the record when it
	// answers, before its log is synced; the reply names the log
	// position the sender then waits for with CallLogSync. ECONFLICT if
	// the receiver holds a version the sender did not see, or is itself
	// writing the key and the sender is the junior center. Priority: it
	// runs on the engine's priority worker, never behind client writes
	// that wait for it.
	CallReplicate uint16 = wire.CallRegistryBase + 0x20
	// CallTouch (center to center) forwards a lease renewal. Idempotent,
	// Priority.
	CallTouch uint16 = wire.CallRegistryBase + 0x21
	// CallLogSync (center to center) waits until the receiver's log is
	// durable up to a position a CallReplicate reply gave. ESTALE if the
	// log incarnation is not the receiver's (it restarted: the record
	// may be lost there); EFAULT if its log failed. Served inline on the
	// receiver's reader goroutine: the reply comes from the fsync that
	// covers the position, no goroutine waits for it.
	CallLogSync uint16 = wire.CallRegistryBase + 0x22
)

// CallPut modes.
const (
	PutPlain = 0
	PutCAS   = 1
)

// Every client write (CallPut, CallDelete, CallRegister,
// CallDeregister) ends with OpParams parameters naming the operation:
// u64 client id, u64 operation number (sdk.OpID; both 0: none). Every
// attempt of one call carries the same pair.
const OpParams = 2

// CallList flags.
const (
	// ListTombstones includes deleted entries, for anti-entropy and
	// resynchronization.
	ListTombstones = 1 << 0
)

// ListScan bounds the keys one CallList page examines, returned or
// skipped (deleted or expired entries of a listing without
// ListTombstones): the center holds its one lock while it walks them, and
// a prefix may hold up to its Config.MaxKeys tombstones. A page that
// reaches the bound ends with more set and its next key.
const ListScan = 256

// Parameter schemas.
var (
	SchemaGet         = wire.Schema{wire.TypeString, wire.TypeBytes}
	SchemaPut         = wire.Schema{wire.TypeString, wire.TypeBytes, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
	SchemaDelete      = wire.Schema{wire.TypeString, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
	SchemaList        = wire.Schema{wire.TypeString, wire.TypeString, wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
	SchemaRegister    = wire.Schema{wire.TypeString, wire.TypeString, wire.TypeBytes, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
	SchemaDeregister  = wire.Schema{wire.TypeString, wire.TypeUint64, wire.TypeUint64}
	SchemaRenew       = wire.Schema(nil)
	SchemaSubscribe   = wire.Schema{wire.TypeUint64, wire.TypeString}
	SchemaUnsubscribe = wire.Schema{wire.TypeUint64}
	SchemaSubCheck    = wire.Schema{wire.TypeUint64, wire.TypeUint64}
	SchemaPush        = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
	SchemaReplicate   = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeString, wire.TypeBytes}
	SchemaTouch       = wire.Schema{wire.TypeUint64, wire.TypeString}
	SchemaLogSync     = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
)

// Size bounds derived from the datagram format. A change travels in a
// push as u16 key length, key, u16 record length, record, inside the
// batch parameter of a push datagram; an entry is accepted only if one
// such change fits a push datagram alone, so that every entry can be
// pushed, replicated, listed and read.
const (
	ParamU64Size   = wire.ParamHdrSize + wire.SizeFixed8
	PushFixedSize  = wire.HeaderSize + 3*ParamU64Size + wire.ParamHdrSize
	ChangeHdrSize  = 2 + 2                 // key length, record length
	ListEntryExtra = 2 * wire.ParamHdrSize // str key, bytes record
	// ListFixedSize is a CallList reply's header, u64 more and the
	// header of str next (its text aside).
	ListFixedSize = wire.HeaderSize + ParamU64Size + wire.ParamHdrSize
	// ListFirstEntry is the index of the first entry's key parameter in
	// a CallList reply (after more and next).
	ListFirstEntry = 2
	// MaxListEntries is the most entries one CallList page holds: the
	// datagram's parameters, less more and next, two per entry.
	MaxListEntries = (wire.MaxParams - ListFirstEntry) / 2

	// MaxKeyLen bounds a key (namespace prefix included).
	MaxKeyLen = 512
	// MaxNameLen bounds a service name.
	MaxNameLen = 256
	// MaxAddrLen bounds the address text of a service instance.
	MaxAddrLen = 255
	// MaxOwnerLen is the longest owner text a center records with a
	// registration, the registering endpoint's address as
	// netip.AddrPort prints it: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
	// (an IPv6 zone, link-local only, adds its name).
	MaxOwnerLen = 47
)

// MaxEntry returns the largest key length plus record length that fits one
// push datagram under the limit maxDatagram.
func MaxEntry(maxDatagram int) int { return maxDatagram - PushFixedSize - ChangeHdrSize }

// MaxServiceMeta returns the most metadata bytes a registration of
// service name by node at an address of addrLen bytes may carry under the
// limit maxDatagram, whatever the registering endpoint's address (owner
// text up to MaxOwnerLen); 0 if none fits.
func MaxServiceMeta(maxDatagram int, name string, node uint32, addrLen int) int {
	n := MaxEntry(maxDatagram) - len(sdk.ServiceKey(name, node)) - sdk.MinServiceRecord - addrLen - MaxOwnerLen
	return max(n, 0)
}
