package dispatch

import (
	"context"
	"encoding/binary"
	"time"

	"fastcall/wire"
)

// MarkerStore is the versioned key/value store that holds conflict
// markers: the registry's KV store (RegistryStore) in a cluster, MemStore
// on a single node and in tests. Implementations must be safe for
// concurrent use and answer with wire.Errno values:
//
//   - CAS writes key only if its version is expectVersion (0: the key must
//     not exist), with a time to live (0: none), and returns the new
//     version, never 0; a version mismatch is ECONFLICT.
//   - Get returns the value and version; ENOENT if absent or expired.
//   - Delete removes key if its version is expectVersion (0: any version);
//     ENOENT if absent, ECONFLICT on a version mismatch.
type MarkerStore interface {
	CAS(ctx context.Context, key string, expectVersion uint64, value []byte, ttl time.Duration) (newVersion uint64, err error)
	Get(ctx context.Context, key string) (value []byte, version uint64, err error)
	Delete(ctx context.Context, key string, expectVersion uint64) error
}

// Marker value layout (docs/DISPATCH.md, "Marker format"): a version byte,
// a holder count, then count holders back to back. Integers are
// big-endian.
const (
	markerVersion = 1

	offMarkerVersion  = 0
	sizeMarkerVersion = 1
	offMarkerCount    = offMarkerVersion + sizeMarkerVersion
	sizeMarkerCount   = 1
	markerHdrSize     = offMarkerCount + sizeMarkerCount // 2

	offHolderKind     = 0
	sizeHolderKind    = 1
	offHolderInstance = offHolderKind + sizeHolderKind
	sizeHolderInst    = 8
	offHolderOp       = offHolderInstance + sizeHolderInst
	sizeHolderOp      = 8
	offHolderExpiry   = offHolderOp + sizeHolderOp
	sizeHolderExpiry  = 8
	holderSize        = offHolderExpiry + sizeHolderExpiry // 25

	maxMarkerSize = markerHdrSize + maxHoldersLimit*holderSize
)

// holder is one operation holding a resource.
type holder struct {
	kind     Kind
	instance uint64 // the dispatcher's random instance number
	op       uint64 // the operation id within that dispatcher
	expiryMs int64  // Unix milliseconds after which the holder is void
}

func (h *holder) same(o *holder) bool { return h.instance == o.instance && h.op == o.op }

// decodeMarker appends the holders of value b to dst. A value that is not
// exactly a version-1 marker is EPROTO.
func decodeMarker(b []byte, dst []holder) ([]holder, wire.Errno) {
	if len(b) < markerHdrSize || b[offMarkerVersion] != markerVersion {
		return dst, wire.EPROTO
	}
	n := int(b[offMarkerCount])
	if len(b) != markerHdrSize+n*holderSize {
		return dst, wire.EPROTO
	}
	for i := 0; i < n; i++ {
		h := b[markerHdrSize+i*holderSize:]
		k := Kind(h[offHolderKind])
		if k == KindInvalid || k >= kindLimit {
			return dst, wire.EPROTO
		}
		dst = append(dst, holder{
			kind:     k,
			instance: binary.BigEndian.Uint64(h[offHolderInstance:]),
			op:       binary.BigEndian.Uint64(h[offHolderOp:]),
			expiryMs: int64(binary.BigEndian.Uint64(h[offHolderExpiry:])),
		})
	}
	return dst, wire.OK
}

// appendMarker appends the encoding of hs (at most 255 holders) to dst.
func appendMarker(dst []byte, hs []holder) []byte {
	dst = append(dst, markerVersion, byte(len(hs)))
	for i := range hs {
		var h [holderSize]byte
		h[offHolderKind] = byte(hs[i].kind)
		binary.BigEndian.PutUint64(h[offHolderInstance:], hs[i].instance)
		binary.BigEndian.PutUint64(h[offHolderOp:], hs[i].op)
		binary.BigEndian.PutUint64(h[offHolderExpiry:], uint64(hs[i].expiryMs))
		dst = append(dst, h[:]...)
	}
	return dst
}

// liveHolders drops the holders whose expiry is at or before nowMs, in
// place, and returns the rest with their latest expiry.
func liveHolders(hs []holder, nowMs int64) ([]holder, int64) {
	out := hs[:0]
	var last int64
	for _, h := range hs {
		if h.expiryMs > nowMs {
			out = append(out, h)
			if h.expiryMs > last {
				last = h.expiryMs
			}
		}
	}
	return out, last
}

// markerLock adds and removes holders of markers in a MarkerStore with
// compare-and-set loops. It is safe for concurrent use.
type markerLock struct {
	store      MarkerStore
	prefix     string
	maxHolders int
	nowMs      func() int64
}

// acquire adds me to the marker of resource. It returns OK, ECONFLICT
// when a live holder of a conflicting kind is there, ENOSPC when the
// marker already has maxHolders live holders, EPROTO when the stored
// value is not a marker, EAGAIN when the marker kept changing under it
// for maxCASRounds rounds, or the store's error.
//
// A CAS whose outcome is unknown (the store answered an error that does
// not say the write was refused, such as ETIMEDOUT or EAGAIN, or a
// failover retry found the version changed by that very write) may have
// been applied: the next round reads the marker again, and a marker that
// already lists me (same instance and operation id) is mine: OK. When
// acquire fails after such a CAS, maybe reports that me may be in the
// marker, and the caller releases it.
func (m *markerLock) acquire(ctx context.Context, resource string, me holder) (e wire.Errno, maybe bool) {
	key := m.prefix + resource
	var hs [maxHoldersLimit + 1]holder
	var buf [maxMarkerSize]byte
	for round := 0; round < maxCASRounds; round++ {
		val, ver, err := m.store.Get(ctx, key)
		cur := hs[:0]
		switch e := wire.AsErrno(err); e {
		case wire.OK:
			var d wire.Errno
			if cur, d = decodeMarker(val, cur); d != wire.OK {
				return d, maybe
			}
		case wire.ENOENT:
			ver = 0
		default:
			return e, maybe
		}
		now := m.nowMs()
		cur, _ = liveHolders(cur, now)
		for i := range cur {
			if cur[i].same(&me) {
				return wire.OK, false // an earlier CAS of mine was applied
			}
		}
		for i := range cur {
			if Conflicts(cur[i].kind, me.kind) {
				return wire.ECONFLICT, maybe
			}
		}
		if len(cur) >= m.maxHolders {
			return wire.ENOSPC, maybe
		}
		cur = append(cur, me)
		_, last := liveHolders(cur, now)
		if last <= now {
			return wire.ETIMEDOUT, maybe // my own expiry has passed already
		}
		ttl := time.Duration(last-now) * time.Millisecond
		_, err = m.store.CAS(ctx, key, ver, appendMarker(buf[:0], cur), ttl)
		switch e := wire.AsErrno(err); {
		case e == wire.OK:
			return wire.OK, false
		case e == wire.ENOENT:
			continue // expired under us: read again
		case e == wire.ECONFLICT || casUnknown(e):
			// Changed under us, or perhaps written by this very CAS
			// (a store that fails over retries on the other copy):
			// read again.
			maybe = true
			continue
		default:
			return e, maybe
		}
	}
	return wire.EAGAIN, maybe
}

// casUnknown reports whether a CAS that failed with e may still have been
// applied: the store did not answer, or answered that it could not say.
func casUnknown(e wire.Errno) bool {
	switch e {
	case wire.ETIMEDOUT, wire.EAGAIN, wire.ENODEAD, wire.EBUSY, wire.ECANCELED:
		return true
	}
	return false
}

// release removes me from the marker of resource, deleting the key when
// no live holder remains. A marker that is gone or no longer lists me is
// success (it expired). Errors are as for acquire.
func (m *markerLock) release(ctx context.Context, resource string, me holder) wire.Errno {
	key := m.prefix + resource
	var hs [maxHoldersLimit + 1]holder
	var buf [maxMarkerSize]byte
	for round := 0; round < maxCASRounds; round++ {
		val, ver, err := m.store.Get(ctx, key)
		switch e := wire.AsErrno(err); e {
		case wire.OK:
		case wire.ENOENT:
			return wire.OK
		default:
			return e
		}
		cur, d := decodeMarker(val, hs[:0])
		if d != wire.OK {
			return d
		}
		found := false
		rest := cur[:0]
		for _, h := range cur {
			if h.same(&me) {
				found = true
				continue
			}
			rest = append(rest, h)
		}
		if !found {
			return wire.OK
		}
		now := m.nowMs()
		rest, last := liveHolders(rest, now)
		if len(rest) == 0 {
			err = m.store.Delete(ctx, key, ver)
		} else {
			_, err = m.store.CAS(ctx, key, ver, appendMarker(buf[:0], rest), time.Duration(last-now)*time.Millisecond)
		}
		switch e := wire.AsErrno(err); e {
		case wire.OK:
			return wire.OK
		case wire.ENOENT:
			if len(rest) == 0 {
				return wire.OK
			}
			continue
		case wire.ECONFLICT:
			continue
		default:
			return e
		}
	}
	return wire.EAGAIN
}

func wallMs() int64 { return time.Now().UnixMilli() }
