package dispatch

import (
	"fastcall/wire"
)

// Call numbers, in the range reserved for dispatch (wire.CallDispatchBase,
// 0x0300-0x03FF). This list is append-only: a number, once used, is never
// reassigned. docs/DISPATCH.md ("Wire: call numbers and parameters") is
// the specification of each call's parameters and replies; the schemas
// below are what the receiver checks, and the parameter positions after
// this list are where the code reads and writes them.
const (
	// CallSubmit submits an operation; the reply is its id. Errors as
	// Dispatcher.Submit. Not idempotent: a retransmission is answered
	// from the duplicate cache, never submitted twice.
	CallSubmit uint16 = wire.CallDispatchBase + 0x00
	// CallStatus returns one page of an operation's status, a target
	// entry per target from the request's cursor. The request carries
	// padding: a reply to an unauthenticated request is at most
	// rfc.AmplifyFactor times the request's size, so a client pads its
	// request to get full pages. ENOENT for an unknown or forgotten id,
	// EINVAL for a cursor past the end. Idempotent.
	CallStatus uint16 = wire.CallDispatchBase + 0x01
)

// Parameter positions.
const (
	subParamResource = 0 // CallSubmit request
	subParamKind     = 1
	subParamCallNo   = 2
	subParamSeg      = 3
	subParamTargets  = 4
	subParamDeadline = 5
	subReplyID       = 0

	stParamID     = 0 // CallStatus request
	stParamCursor = 1
	stParamPad    = 2

	stReplyNext     = 0 // CallStatus reply header
	stReplyState    = 1
	stReplyKind     = 2
	stReplyResource = 3
	stReplyTargets  = 4
	stReplyDone     = 5
	stReplyFailed   = 6
	stReplyElapsed  = 7
	stReplyHead     = 8
	stEntryAddr     = 0 // offsets inside one target entry
	stEntryErrno    = 1
	stEntryElapsed  = 2
	stEntryParams   = 3
)

// Sizes used to keep a CallStatus page inside one datagram.
const (
	// stEntryFixed is one target entry without its address text.
	stEntryFixed = wire.ParamHdrSize + (stEntryParams-1)*wire.ParamFixed8Size
	// stMaxEntries is the most target entries a page can hold by count.
	stMaxEntries = (wire.MaxParams - stReplyHead) / stEntryParams
	// maxStatusPages bounds the pages StatusRemote follows.
	maxStatusPages = 1 << 16
	// notDone is the elapsed value of a target without an outcome.
	notDone = ^uint64(0)
)

// Schemas checked by the receiver.
var (
	schemaSubmit = wire.Schema{wire.TypeString, wire.TypeString, wire.TypeUint64, wire.TypeBytes, wire.TypeString, wire.TypeInt64}
	schemaStatus = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
)
