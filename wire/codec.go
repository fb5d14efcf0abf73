package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"

	"github.com/cespare/xxhash/v2"
)

// MinKeyLen is the shortest cluster key the codec accepts.
const MinKeyLen = 16

// Codec seals and opens datagrams: it writes headers, computes and checks
// the checksum or keyed tag, and enforces the size limit. A Codec holds
// per-goroutine scratch state (the HMAC instances) and is not safe for
// concurrent use: give each goroutine its own, with Clone.
//
// With no key the codec writes checksummed datagrams and rejects
// authenticated ones (it cannot check them). With a key it writes
// authenticated datagrams and rejects every datagram that is not
// authenticated with the key or, during a rotation, the previous key.
type Codec struct {
	limit int
	key   []byte    // current key; nil in checksum mode
	prev  []byte    // previous key still accepted; nil if none
	mac   hash.Hash // HMAC-SHA256 with key
	pmac  hash.Hash // HMAC-SHA256 with prev
	sum   [sha256.Size]byte
}

// NewCodec returns a codec with the given datagram size limit (0 means
// DefaultMaxDatagram) and cluster key (nil or empty means checksum mode).
// A limit outside [MinDatagram, MaxDatagram] or a key shorter than
// MinKeyLen gives EINVAL.
func NewCodec(limit int, key []byte) (*Codec, error) {
	if limit == 0 {
		limit = DefaultMaxDatagram
	}
	if limit < MinDatagram || limit > MaxDatagram {
		return nil, EINVAL
	}
	c := &Codec{limit: limit}
	if len(key) > 0 {
		if err := c.SetKeys(key, nil); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// SetKeys installs the current key and, during a rotation window, the
// previous one, which is still accepted on receive but never used to send.
// Keys are copied.
func (c *Codec) SetKeys(key, prev []byte) error {
	if len(key) < MinKeyLen || (len(prev) > 0 && len(prev) < MinKeyLen) {
		return EINVAL
	}
	c.key = append([]byte(nil), key...)
	c.mac = hmac.New(sha256.New, c.key)
	c.prev, c.pmac = nil, nil
	if len(prev) > 0 {
		c.prev = append([]byte(nil), prev...)
		c.pmac = hmac.New(sha256.New, c.prev)
	}
	return nil
}

// Clone returns an independent codec with the same limit and keys.
func (c *Codec) Clone() *Codec {
	n := &Codec{limit: c.limit}
	if c.key != nil {
		_ = n.SetKeys(c.key, c.prev)
	}
	return n
}

// Limit returns the datagram size limit.
func (c *Codec) Limit() int { return c.limit }

// Authenticated reports whether the codec has a key.
func (c *Codec) Authenticated() bool { return c.key != nil }

// MaxSegment returns the largest parameter segment that fits the limit.
func (c *Codec) MaxSegment() int { return c.limit - HeaderSize }

// Encode writes a datagram with header h and the encoded parameter
// segment seg (count parameters) into dst and returns its length. The
// FlagAuth bit of h is set or cleared to match the codec. EMSGSIZE if the
// datagram would exceed the limit or dst; EINVAL if count is too large or
// the flags are inconsistent. seg may already sit at dst[HeaderSize:], in
// which case it is not copied.
func (c *Codec) Encode(dst []byte, h *Header, seg []byte, count int) (int, Errno) {
	n := HeaderSize + len(seg)
	if n > c.limit || n > len(dst) {
		return 0, EMSGSIZE
	}
	if count > MaxParams || count < 0 || count*ParamHdrSize > len(seg) {
		return 0, EINVAL
	}
	flags := h.Flags &^ FlagAuth
	if c.key != nil {
		flags |= FlagAuth
	}
	if checkFlags(flags, h.Errno) != ReasonNone {
		return 0, EINVAL
	}
	if len(seg) > 0 && &dst[HeaderSize] != &seg[0] {
		copy(dst[HeaderSize:], seg)
	}
	writeHeader(dst, h, count, len(seg))
	dst[OffFlags] = flags
	c.seal(dst[:n])
	return n, OK
}

// EncodeParams is Encode with a Params builder.
func (c *Codec) EncodeParams(dst []byte, h *Header, p *Params) (int, Errno) {
	if p == nil {
		return c.Encode(dst, h, nil, 0)
	}
	if p.err != OK {
		return 0, p.err
	}
	return c.Encode(dst, h, p.Segment(), p.count)
}

// seal computes the integrity field of a datagram whose header is written.
func (c *Codec) seal(b []byte) {
	tag := b[OffTag : OffTag+SizeTag]
	if c.key == nil {
		put64(tag, checksum(b))
		clear(tag[SizeSum:])
		return
	}
	copy(tag, c.hmacOf(c.mac, b))
}

// checksum is xxhash64 (seed 0) over the header up to the tag field
// followed by the parameter segment.
func checksum(b []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write(b[:OffTag])
	d.Write(b[HeaderSize:])
	return d.Sum64()
}

// hmacOf returns the first SizeTag bytes of HMAC-SHA256 over the same
// ranges as checksum, in the codec's scratch space.
func (c *Codec) hmacOf(m hash.Hash, b []byte) []byte {
	m.Reset()
	m.Write(b[:OffTag])
	m.Write(b[HeaderSize:])
	return m.Sum(c.sum[:0])[:SizeTag]
}

// verify checks the integrity field of a datagram whose header parsed.
func (c *Codec) verify(b []byte) Reason {
	tag := b[OffTag : OffTag+SizeTag]
	if b[OffFlags]&FlagAuth == 0 {
		if c.key != nil {
			return ReasonUnauth
		}
		var z uint8
		for _, x := range tag[SizeSum:] {
			z |= x
		}
		if z != 0 || be64(tag) != checksum(b) {
			return ReasonChecksum
		}
		return ReasonNone
	}
	if c.key == nil {
		return ReasonTag
	}
	if subtle.ConstantTimeCompare(tag, c.hmacOf(c.mac, b)) == 1 {
		return ReasonNone
	}
	if c.pmac != nil && subtle.ConstantTimeCompare(tag, c.hmacOf(c.pmac, b)) == 1 {
		return ReasonNone
	}
	return ReasonTag
}

// Decode validates datagram b (size, magic, version, flags, lengths,
// integrity, parameters) and fills p with views into b. It returns
// ReasonNone or the first reason for rejection; reason.Errno() gives the
// error number. Decode never allocates and never reads outside b.
func (c *Codec) Decode(p *Packet, b []byte) Reason {
	if r := parseHeader(p, b, c.limit); r != ReasonNone {
		return r
	}
	if r := c.verify(b); r != ReasonNone {
		return r
	}
	p.Verified = true
	return parseParams(p)
}

// Reseal recomputes the integrity field of a datagram in place after its
// header fields were changed (for instance the retransmission flag). It
// needs at least a header's worth of bytes.
func (c *Codec) Reseal(b []byte) {
	if len(b) < HeaderSize {
		return
	}
	if c.key != nil {
		b[OffFlags] |= FlagAuth
	} else {
		b[OffFlags] &^= FlagAuth
	}
	clear(b[OffTag : OffTag+SizeTag])
	c.seal(b)
}

// Restamp rewrites the budget and stamp of an encoded request, sets the
// retransmission flag if retrans, and reseals it. The engine uses it before
// every retransmission.
func (c *Codec) Restamp(b []byte, budget, stamp uint32, retrans bool) {
	if len(b) < HeaderSize {
		return
	}
	put32(b[OffBudget:], budget)
	put32(b[OffStamp:], stamp)
	if retrans {
		b[OffFlags] |= FlagRetrans
	}
	c.Reseal(b)
}
