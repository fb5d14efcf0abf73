package sdk

import (
	"encoding/binary"

	"fastcall/wire"
)

// Entry record layout (docs/REGISTRY.md, "SDK value format"). Every
// registry entry, live or deleted, is one record: a fixed 32-byte header
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
//
// Service body:
//
//	[32:36]  lease      lease duration in ms
//	[36:38]  addr len   a
//	[38:38+a]           service address, text "ip:port"
//	[..+2]   owner len  o
//	[..+o]              registering endpoint address, text "ip:port"
//	[rest]              metadata, opaque
//
// KV body: the value, opaque. Tombstone body: empty.
const (
	RecFormat = 1

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
	RecHeaderSize = OffModified + SizeModified // 32

	OffLease    = RecHeaderSize
	SizeLease   = 4
	OffAddrLen  = OffLease + SizeLease
	SizeAddrLen = 2
	OffAddr     = OffAddrLen + SizeAddrLen // 38
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
