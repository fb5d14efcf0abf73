package sdk

import (
	"encoding/binary"

	"fastcall/wire"
)

// Entry record layout (docs/REGISTRY.md, "SDK value format"). Every
// registry entry, live or deleted, is one record: a fixed 56-byte header
// then a body whose layout depends on the kind. All integers are
// big-endian, as on the wire.
//
//	[0]      format     RecFormat
//	[1]      kind       KindTombstone, KindService or KindKV
//	[2:4]    flags      reserved, zero
//	[4:8]    node       node id of the writer (services: the instance's node)
//	[8:16]   version    entry version (see VersionNext)
//	[16:24]  expire     KV: absolute expiry, Unix ms (0 = none); else 0
//	[24:32]  modified   Unix ms when the version was made
//	[32:40]  epoch      epoch of the center that made the version (see Stamp)
//	[40:48]  client     id of the client whose operation made it (0: none)
//	[48:56]  op         that client's operation number
//
// Service body:
//
//	[56:60]  lease      lease duration in ms
//	[60:62]  addr len   a
//	[62:62+a]           service address, text "ip:port"
//	[..+2]   owner len  o
//	[..+o]              registering endpoint address, text "ip:port"
//	[rest]              metadata, opaque
//
// KV body: the value, opaque. Tombstone body: empty.
//
// Format 1 records (the header's first 32 bytes, no epoch and no
// operation) are read only by UpgradeRecord.
const (
	RecFormat   = 2
	RecFormatV1 = 1

	OffFormat     = 0
	SizeFormat    = 1
	OffKind       = OffFormat + SizeFormat
	SizeKind      = 1
	OffFlags      = OffKind + SizeKind
	SizeFlags     = 2
	OffNode       = OffFlags + SizeFlags
	SizeNode      = 4
	OffVersion    = OffNode + SizeNode
	SizeVersion   = 8
	OffExpire     = OffVersion + SizeVersion
	SizeExpire    = 8
	OffModified   = OffExpire + SizeExpire
	SizeModified  = 8
	OffEpoch      = OffModified + SizeModified
	SizeEpoch     = 8
	OffClient     = OffEpoch + SizeEpoch
	SizeClient    = 8
	OffOp         = OffClient + SizeClient
	SizeOp        = 8
	RecHeaderSize = OffOp + SizeOp // 56

	// RecHeaderSizeV1 is the header of a format 1 record: everything
	// before the epoch.
	RecHeaderSizeV1 = OffEpoch

	OffLease    = RecHeaderSize
	SizeLease   = 4
	OffAddrLen  = OffLease + SizeLease
	SizeAddrLen = 2
	OffAddr     = OffAddrLen + SizeAddrLen // 62
	SizeOwnLen  = 2
	// MinServiceRecord is a service record with empty address, owner and
	// metadata.
	MinServiceRecord = OffAddr + SizeOwnLen
)

// Record kinds. Append-only.
const (
	KindTombstone uint8 = 0 // the key was deleted at this version
	KindService   uint8 = 1 // one instance of a service
	KindKV        uint8 = 2 // a key/value entry
)

// Key namespace. Service instances live under ServicePrefix as
// "svc/<name>#<node id, 8 lower-case hex digits>"; key/value entries under
// KVPrefix as "kv/<key>". A service name must not contain InstanceSep.
const (
	ServicePrefix = "svc/"
	KVPrefix      = "kv/"
	InstanceSep   = '#'
	nodeHexLen    = 8
)

// Record is a decoded entry record. Addr, Owner and Body are views into
// the decoded bytes.
type Record struct {
	Kind       uint8
	Node       uint32
	Version    uint64
	ExpireMs   int64
	ModifiedMs int64
	Epoch      uint64 // epoch of the center that made the version
	Op         OpID   // the client operation that made it (zero: none)
	LeaseMs    uint32 // services
	Addr       []byte // services: service address text
	Owner      []byte // services: registering endpoint address text
	Body       []byte // services: metadata; KV: value; tombstone: nil
}

// RecordSize returns the encoded size of r.
func RecordSize(r *Record) int {
	switch r.Kind {
	case KindService:
		return MinServiceRecord + len(r.Addr) + len(r.Owner) + len(r.Body)
	case KindKV:
		return RecHeaderSize + len(r.Body)
	}
	return RecHeaderSize
}

// AppendRecord appends the encoding of r to dst. Address and owner texts
// longer than 65535 bytes are the caller's bug (the registry refuses them
// long before: a record must fit a datagram).
func AppendRecord(dst []byte, r *Record) []byte {
	var h [RecHeaderSize]byte
	h[OffFormat] = RecFormat
	h[OffKind] = r.Kind
	binary.BigEndian.PutUint32(h[OffNode:], r.Node)
	binary.BigEndian.PutUint64(h[OffVersion:], r.Version)
	binary.BigEndian.PutUint64(h[OffExpire:], uint64(r.ExpireMs))
	binary.BigEndian.PutUint64(h[OffModified:], uint64(r.ModifiedMs))
	binary.BigEndian.PutUint64(h[OffEpoch:], r.Epoch)
	binary.BigEndian.PutUint64(h[OffClient:], r.Op.Client)
	binary.BigEndian.PutUint64(h[OffOp:], r.Op.Seq)
	dst = append(dst, h[:]...)
	switch r.Kind {
	case KindService:
		dst = binary.BigEndian.AppendUint32(dst, r.LeaseMs)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Addr)))
		dst = append(dst, r.Addr...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Owner)))
		dst = append(dst, r.Owner...)
		dst = append(dst, r.Body...)
	case KindKV:
		dst = append(dst, r.Body...)
	}
	return dst
}

// ParseRecord decodes b into r (views into b). It checks every length
// against b first and returns EPROTO for a record that is short, of
// another format, of an unknown kind, or whose lengths run past its end.
func ParseRecord(b []byte, r *Record) wire.Errno {
	if len(b) < RecHeaderSize || b[OffFormat] != RecFormat {
		return wire.EPROTO
	}
	*r = Record{
		Kind:       b[OffKind],
		Node:       binary.BigEndian.Uint32(b[OffNode:]),
		Version:    binary.BigEndian.Uint64(b[OffVersion:]),
		ExpireMs:   int64(binary.BigEndian.Uint64(b[OffExpire:])),
		ModifiedMs: int64(binary.BigEndian.Uint64(b[OffModified:])),
		Epoch:      binary.BigEndian.Uint64(b[OffEpoch:]),
		Op:         OpID{Client: binary.BigEndian.Uint64(b[OffClient:]), Seq: binary.BigEndian.Uint64(b[OffOp:])},
	}
	switch r.Kind {
	case KindTombstone:
		if len(b) != RecHeaderSize {
			return wire.EPROTO
		}
	case KindKV:
		r.Body = b[RecHeaderSize:]
	case KindService:
		if len(b) < MinServiceRecord {
			return wire.EPROTO
		}
		r.LeaseMs = binary.BigEndian.Uint32(b[OffLease:])
		a := int(binary.BigEndian.Uint16(b[OffAddrLen:]))
		off := OffAddr + a
		if off+SizeOwnLen > len(b) {
			return wire.EPROTO
		}
		r.Addr = b[OffAddr:off]
		o := int(binary.BigEndian.Uint16(b[off:]))
		off += SizeOwnLen
		if off+o > len(b) {
			return wire.EPROTO
		}
		r.Owner = b[off : off+o]
		r.Body = b[off+o:]
	default:
		return wire.EPROTO
	}
	return wire.OK
}

// RecordVersion returns the version of an encoded record, 0 if b is too
// short to hold one.
func RecordVersion(b []byte) uint64 {
	if len(b) < RecHeaderSize {
		return 0
	}
	return binary.BigEndian.Uint64(b[OffVersion:])
}

// Stamp identifies one record of a key and orders the records of a key:
// by version, then by the epoch of the center that made it. A center's
// epoch grows each time it starts, so a center that restarted after
// losing writes it had made (and replicated, or pushed) and that makes
// one of their version numbers again makes a different stamp, and a
// newer one. Two records of a key with equal stamps are the same record.
type Stamp struct {
	Version uint64
	Epoch   uint64
}

// Compare returns -1, 0 or +1 as a is older than, the same as, or newer
// than b.
func (a Stamp) Compare(b Stamp) int {
	switch {
	case a.Version != b.Version:
		if a.Version < b.Version {
			return -1
		}
		return 1
	case a.Epoch != b.Epoch:
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	}
	return 0
}

// RecordStamp returns the stamp of an encoded record, the zero Stamp if b
// is too short to hold one.
func RecordStamp(b []byte) Stamp {
	if len(b) < RecHeaderSize {
		return Stamp{}
	}
	return Stamp{Version: binary.BigEndian.Uint64(b[OffVersion:]), Epoch: binary.BigEndian.Uint64(b[OffEpoch:])}
}

// OpID names one write operation of a client: the client's id, random
// and never 0, chosen when the client is made, and a number the client
// never uses twice. A record keeps the OpID of the operation that made
// it, so a center that receives the operation again (a retry, at either
// center) recognises it. The zero OpID names no operation.
type OpID struct {
	Client uint64
	Seq    uint64
}

// UpgradeRecord returns the format 2 encoding of a format 1 record
// (epoch 0, no operation), or b itself if it is already format 2. EPROTO
// if b is neither.
func UpgradeRecord(b []byte) ([]byte, wire.Errno) {
	if len(b) >= RecHeaderSize && b[OffFormat] == RecFormat {
		return b, wire.OK
	}
	if len(b) < RecHeaderSizeV1 || b[OffFormat] != RecFormatV1 {
		return nil, wire.EPROTO
	}
	out := make([]byte, 0, len(b)+RecHeaderSize-RecHeaderSizeV1)
	out = append(out, b[:RecHeaderSizeV1]...)
	out[OffFormat] = RecFormat
	out = append(out, make([]byte, RecHeaderSize-RecHeaderSizeV1)...)
	out = append(out, b[RecHeaderSizeV1:]...)
	var r Record
	if e := ParseRecord(out, &r); e != wire.OK {
		return nil, e
	}
	return out, wire.OK
}

// RecordKind returns the kind of an encoded record, KindTombstone if b is
// too short to hold one.
func RecordKind(b []byte) uint8 {
	if len(b) < RecHeaderSize {
		return KindTombstone
	}
	return b[OffKind]
}

// ServiceKey returns the key of the instance of service name on node.
func ServiceKey(name string, node uint32) string {
	b := make([]byte, 0, len(ServicePrefix)+len(name)+1+nodeHexLen)
	b = append(b, ServicePrefix...)
	b = append(b, name...)
	b = append(b, InstanceSep)
	return string(appendHex32(b, node))
}

// ServiceNamePrefix returns the key prefix every instance of service name
// starts with.
func ServiceNamePrefix(name string) string {
	return ServicePrefix + name + string(InstanceSep)
}

// SplitServiceKey splits an instance key into service name and node id;
// ok is false for a key that is not an instance key.
func SplitServiceKey(key []byte) (name []byte, node uint32, ok bool) {
	n := len(key)
	if n < len(ServicePrefix)+1+nodeHexLen || string(key[:len(ServicePrefix)]) != ServicePrefix ||
		key[n-nodeHexLen-1] != InstanceSep {
		return nil, 0, false
	}
	for _, c := range key[n-nodeHexLen:] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return nil, 0, false
		}
		node = node<<4 | uint32(d)
	}
	return key[len(ServicePrefix) : n-nodeHexLen-1], node, true
}

func appendHex32(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for i := nodeHexLen - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xF])
	}
	return b
}

// VersionNext returns the version a center with origin index origin (0 or
// 1) gives the next write of an entry whose current version is cur (0:
// absent). Versions of one key grow strictly; the low bit names the
// center that made the version, so two centers never make the same one.
func VersionNext(cur uint64, origin uint8) uint64 {
	return ((cur>>1)+1)<<1 | uint64(origin&1)
}
