package wire

// Header layout. Every multi-byte field is big-endian. Offsets are derived
// from the previous field so that a change of one size moves the rest.
const (
	Magic   = 0xFCA1 // first two bytes of every datagram
	Version = 2      // protocol version: raised on any incompatible change (docs/PROTOCOL.md, "Versions")

	OffMagic   = 0
	SizeMagic  = 2
	OffVersion = OffMagic + SizeMagic
	SizeVer    = 1
	OffFlags   = OffVersion + SizeVer
	SizeFlags  = 1
	OffCallNo  = OffFlags + SizeFlags
	SizeCallNo = 2
	OffErrno   = OffCallNo + SizeCallNo
	SizeErrno  = 2
	OffSrc     = OffErrno + SizeErrno
	SizeNode   = 4
	OffDst     = OffSrc + SizeNode
	OffCallID  = OffDst + SizeNode
	SizeCallID = 8
	OffIncarn  = OffCallID + SizeCallID
	SizeIncarn = 4
	OffPeerInc = OffIncarn + SizeIncarn
	OffBudget  = OffPeerInc + SizeIncarn
	SizeBudget = 4
	OffStamp   = OffBudget + SizeBudget
	SizeStamp  = 4
	OffNParams = OffStamp + SizeStamp
	SizeNParam = 2
	OffPLen    = OffNParams + SizeNParam
	SizePLen   = 2
	OffTag     = OffPLen + SizePLen
	SizeTag    = 16
	HeaderSize = OffTag + SizeTag // 60

	// SizeSum is the part of the tag field the checksum uses; the rest
	// of the tag field must be zero in checksum mode.
	SizeSum = 8
)

// Header flags. Exactly one of FlagRequest and FlagReply is set. FlagError
// appears only on replies and exactly when the error field is non-zero.
// FlagOneWay appears only on requests. Bits 6 and 7 are reserved and must
// be zero.
const (
	FlagRequest  = 1 << 0 // a request: the callee runs the call
	FlagReply    = 1 << 1 // a reply: carries the call id of its request
	FlagError    = 1 << 2 // an error reply: Errno is non-zero
	FlagOneWay   = 1 << 3 // request that wants no reply
	FlagRetrans  = 1 << 4 // retransmission of an earlier request
	FlagAuth     = 1 << 5 // the tag is the keyed tag (GHASH then AES), not a checksum
	flagReserved = 1<<6 | 1<<7
)

// Parameter encoding: a one-byte type, a two-byte big-endian value length,
// then the value.
const (
	OffParamType  = 0
	SizeParamType = 1
	OffParamLen   = OffParamType + SizeParamType
	SizeParamLen  = 2
	ParamHdrSize  = OffParamLen + SizeParamLen // 3
	SizeFixed8    = 8                          // int64, uint64, float64 values
	SizeBool      = 1                          // bool value: 0 or 1

	// ParamFixed8Size is one encoded int64, uint64 or float64 parameter,
	// header and value, and ParamBoolSize one bool parameter: what a
	// caller sizing a buffer or a page counts for each.
	ParamFixed8Size = ParamHdrSize + SizeFixed8
	ParamBoolSize   = ParamHdrSize + SizeBool
)

// Size limits.
const (
	// DefaultMaxDatagram keeps a datagram inside one IP packet on common
	// paths (no fragmentation).
	DefaultMaxDatagram = 1400
	// MaxDatagram is the largest UDP payload over IPv4.
	MaxDatagram = 65507
	// MaxParams bounds the parameter count of one datagram.
	MaxParams = 64
	// MinDatagram is the smallest valid datagram: a header alone.
	MinDatagram = HeaderSize
)

// Reserved call-number ranges. Call numbers below CallUserBase belong to
// fastcall's own services; applications register theirs at CallUserBase
// and above. See docs/PROTOCOL.md.
const (
	CallEngineBase    = 0x0001 // 0x0001-0x00FF: engine (ping, stats, engine-stats, calls)
	CallHeartbeatBase = 0x0100 // 0x0100-0x01FF: node/heartbeat and master/worker
	CallRegistryBase  = 0x0200 // 0x0200-0x02FF: node/registry
	CallDispatchBase  = 0x0300 // 0x0300-0x03FF: node/dispatch
	CallRouteBase     = 0x0400 // 0x0400-0x04FF: node/route and members
	CallToolBase      = 0x0800 // 0x0800-0x0FFF: built-in calls of rfcd
	CallUserBase      = 0x1000 // 0x1000-0xFFFF: applications
)
