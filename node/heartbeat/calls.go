package heartbeat

import (
	"fastcall/wire"
)

// Call numbers, in the range reserved for the heartbeat service
// (wire.CallHeartbeatBase, 0x0100-0x01FF). This list is append-only: a
// number, once used, is never reassigned. docs/HEARTBEAT.md ("Wire: call
// numbers and parameters") is the specification of each call's parameters
// and replies; the schemas below are what the receiver checks, and the
// parameter positions after this list are where the code reads and
// writes them.
const (
	// CallHeartbeat is a probe: each side sends its incarnation and its
	// view of the other, and membership updates (gossip.go) ride along
	// within the reply budget. Idempotent, Priority.
	CallHeartbeat uint16 = wire.CallHeartbeatBase + 0x00
	// CallProbeRequest asks a member to probe a target for the sender
	// (an indirect probe). One-way.
	CallProbeRequest uint16 = wire.CallHeartbeatBase + 0x01
	// CallProbeAck answers a CallProbeRequest. One-way.
	CallProbeAck uint16 = wire.CallHeartbeatBase + 0x02
	// CallMembers returns one page of the receiver's member view. The
	// request carries padding: the engine caps a reply to an
	// unauthenticated request at rfc.AmplifyFactor times the request's
	// size, so a client that wants full pages pads its request.
	CallMembers uint16 = wire.CallHeartbeatBase + 0x03
	// CallGossip carries membership updates alone, while some wait to
	// be disseminated. One-way. Applied only from a member's own address.
	CallGossip uint16 = wire.CallHeartbeatBase + 0x04
	// CallJoin asks the receiver to add the sender (at its own address)
	// as a member. EPERM unless the receiver runs with
	// Config.AcceptJoins, ENOSPC when its member list is full.
	// Idempotent (a member already listed is OK).
	CallJoin uint16 = wire.CallHeartbeatBase + 0x05

	// CallTaskStart (master to worker) starts a task; the reply names
	// the worker incarnation it runs under. ESTALE, unrun, for a stale
	// start (see Worker.serveStart). Not idempotent (at most once
	// through the duplicate cache).
	CallTaskStart uint16 = wire.CallHeartbeatBase + 0x10
	// CallTaskProgress (worker to master) reports progress. One-way.
	CallTaskProgress uint16 = wire.CallHeartbeatBase + 0x11
	// CallTaskResult (worker to master) delivers a task's outcome.
	// ESTALE if the master gave the task up, holds that id for another
	// start, or fenced the worker incarnation, ENOENT if it never issued
	// it, EINVAL for an error number past 16 bits (an Errno), an incarnation
	// past 32 (the task stays in flight). Not idempotent.
	CallTaskResult uint16 = wire.CallHeartbeatBase + 0x12
	// CallTaskCancel (master to worker) cancels a task. ENOENT if the
	// worker does not run it. Idempotent.
	CallTaskCancel uint16 = wire.CallHeartbeatBase + 0x13
	// CallTaskCheck (worker to master) renews a task's lease. ENOENT if
	// the master never issued the id, ESTALE if it ended the task, holds
	// that id for another start, or fenced the worker incarnation,
	// ECLOSED if the master is closed. Idempotent (it only reads),
	// Priority (served ahead of ordinary calls, as a heartbeat).
	CallTaskCheck uint16 = wire.CallHeartbeatBase + 0x14
)

// Parameter positions.
const (
	hbParamInc       = 0 // CallHeartbeat request and reply
	hbParamViewState = 1
	hbParamViewInc   = 2
	hbParamViewDied  = 3
	hbParams         = 4 // the view fields
	hbParamUpdates   = 4 // bytes: packed membership updates (gossip.go)
	hbParamsUpd      = 5

	prqParamSeq       = 0 // CallProbeRequest
	prqParamNode      = 1
	prqParamAddr      = 2
	prqParamViewState = 3
	prqParamViewInc   = 4

	pakParamSeq     = 0 // CallProbeAck
	pakParamNode    = 1
	pakParamReached = 2
	pakParamInc     = 3

	gsParamInc     = 0 // CallGossip
	gsParamUpdates = 1

	jnParamInc = 0 // CallJoin

	memParamCursor   = 0 // CallMembers request
	memParamPad      = 1
	memReplyNext     = 0 // CallMembers reply header
	memReplyNode     = 1
	memReplyInc      = 2
	memReplyHead     = 3
	memEntryAddr     = 0 // offsets inside one member entry
	memEntryNode     = 1
	memEntryState    = 2
	memEntryInc      = 3
	memEntryHeardAgo = 4
	memEntryParams   = 5

	tsParamID      = 0 // CallTaskStart
	tsParamMastInc = 1
	tsParamKind    = 2
	tsParamPayload = 3
	tsReplyInc     = 0

	// Every report a worker makes about a task (task-check,
	// task-progress, task-result) opens with the start it is about:
	// u64 task id, u64 master incarnation, u64 task incarnation.
	rpParamID      = 0
	rpParamMastInc = 1
	rpParamInc     = 2
	rpParams       = 3

	tpParamDone  = rpParams // CallTaskProgress
	tpParamTotal = rpParams + 1
	tpParams     = rpParams + 2

	trParamErrno = rpParams // CallTaskResult
	trParamData  = rpParams + 1

	tcParamID = 0 // CallTaskCancel

	tkParams = rpParams // CallTaskCheck
)

// Sizes used to keep a CallMembers page inside one datagram.
const (
	sizeU64Param = wire.ParamFixed8Size // one u64 parameter, as wire encodes it
	// maxAddrText bounds an address as text: a bracketed IPv6 address
	// with a zone and a port.
	maxAddrText = 64
	// memEntryMax is the most bytes one member entry takes.
	memEntryMax = wire.ParamHdrSize + maxAddrText + (memEntryParams-1)*sizeU64Param
	// memHeadSize is the reply header of a page.
	memHeadSize = memReplyHead * sizeU64Param
	// maxMemberPages bounds the pages QueryMembers follows.
	maxMemberPages = 4096
)

// Schemas checked by the receiver.
var (
	schemaHeartbeat    = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
	schemaProbeRequest = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeString, wire.TypeUint64, wire.TypeUint64}
	schemaProbeAck     = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeBool, wire.TypeUint64}
	schemaMembers      = wire.Schema{wire.TypeUint64, wire.TypeBytes}
	schemaGossip       = wire.Schema{wire.TypeUint64, wire.TypeBytes}
	schemaJoin         = wire.Schema{wire.TypeUint64}
	schemaTaskStart    = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
	schemaTaskProgress = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
	schemaTaskResult   = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
	schemaTaskCancel   = wire.Schema{wire.TypeUint64}
	schemaTaskCheck    = wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
)

// paramsBuf returns a parameter builder over a fresh buffer of n bytes.
// Used off the hot path only (probes reuse their own builders).
func paramsBuf(n int) *wire.Params {
	p := new(wire.Params)
	p.Reset(make([]byte, n))
	return p
}
