package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/cespare/xxhash/v2"
)

// MinKeyLen is the shortest cluster key the codec accepts.
const MinKeyLen = 16

// Keyed tag (docs/PROTOCOL.md, "Integrity" and "Security"): the tag is
// AES-256(Kp, AES-256-GCM(Kg).Seal(nonce tagNonce, plaintext empty,
// additional data M)), where M is the datagram with its tag field taken
// as zeros, and Kg, Kp are HKDF-SHA256 expansions of the cluster key (no
// salt) with the two info labels below. GCM with an empty plaintext is
// GHASH(M) masked by a constant block; the second AES keeps every GHASH
// value secret, which is why one fixed nonce is sound here.
const (
	tagKeyLen     = 32                   // AES-256 key bytes, each of Kg and Kp
	tagLabelGHASH = "fastcall tag ghash" // HKDF info for Kg
	tagLabelPRP   = "fastcall tag prp"   // HKDF info for Kp
	sizeTagNonce  = 12                   // GCM's standard nonce size
)

// tagNonce is the fixed GCM nonce of the keyed tag: eleven zero bytes and
// a one.
var tagNonce = [sizeTagNonce]byte{sizeTagNonce - 1: 1}

// tagKey is one cluster key's tag state: the GHASH half and the PRP half.
type tagKey struct {
	gh  cipher.AEAD  // AES-256-GCM under Kg
	prp cipher.Block // AES-256 under Kp
}

// newTagKey derives Kg and Kp from a cluster key.
func newTagKey(key []byte) (*tagKey, error) {
	kg, err := hkdf.Key(sha256.New, key, nil, tagLabelGHASH, tagKeyLen)
	if err != nil {
		return nil, err
	}
	kp, err := hkdf.Key(sha256.New, key, nil, tagLabelPRP, tagKeyLen)
	if err != nil {
		return nil, err
	}
	gb, err := aes.NewCipher(kg)
	if err != nil {
		return nil, err
	}
	gh, err := cipher.NewGCM(gb)
	if err != nil {
		return nil, err
	}
	prp, err := aes.NewCipher(kp)
	if err != nil {
		return nil, err
	}
	return &tagKey{gh: gh, prp: prp}, nil
}

// Codec seals and opens datagrams: it writes headers, computes and checks
// the checksum or keyed tag, and enforces the size limit. A Codec holds
// per-goroutine scratch state (the tag's block and the verify copy) and is
// not safe for concurrent use: give each goroutine its own, with Clone.
//
// With no key the codec writes checksummed datagrams and rejects
// authenticated ones (it cannot check them). With a key it writes
// authenticated datagrams and rejects every datagram that is not
// authenticated with the key or, during a rotation, the previous key.
type Codec struct {
	limit int
	key   []byte  // current key; nil in checksum mode
	prev  []byte  // previous key still accepted; nil if none
	tk    *tagKey // tag state of key
	ptk   *tagKey // tag state of prev; nil if none
	ghash [SizeTag]byte
	tag   [SizeTag]byte
	// scratch holds a copy of a datagram being verified, its tag field
	// zeroed, because GCM takes M as one slice and Decode leaves b as it
	// found it: b is the caller's, and zeroing then restoring the tag in
	// place would race with any goroutine reading b meanwhile (a datagram
	// decoded by two codecs at once, TestKeyedDecodeLeavesInput). The copy
	// costs far less than the tag. It grows to the largest datagram
	// verified and is reused.
	scratch []byte
}

// NewCodec returns a codec with the given datagram size limit (0 means
// DefaultMaxDatagram) and cluster key (nil or empty means checksum mode).
// A limit outside [MinDatagram, MaxDatagram] or a key shorter than
// MinKeyLen gives EINVAL; a key where the tag cannot be computed gives
// ENOSYS (SetKeys).
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
// Keys are copied. EINVAL for a key shorter than MinKeyLen; ENOSYS where
// the tag's ciphers cannot be built: Go's FIPS 140-only mode
// (GODEBUG=fips140=only) refuses GCM with a nonce the caller chooses, and
// newTagKey's other steps cannot fail for a 32-byte AES key. On error the
// codec keeps its keys.
func (c *Codec) SetKeys(key, prev []byte) error {
	if len(key) < MinKeyLen || (len(prev) > 0 && len(prev) < MinKeyLen) {
		return EINVAL
	}
	tk, err := newTagKey(key)
	if err != nil {
		return ENOSYS
	}
	var ptk *tagKey
	if len(prev) > 0 {
		if ptk, err = newTagKey(prev); err != nil {
			return ENOSYS
		}
	}
	c.key, c.tk = append([]byte(nil), key...), tk
	c.prev, c.ptk = nil, ptk
	if ptk != nil {
		c.prev = append([]byte(nil), prev...)
	}
	return nil
}

// Clone returns an independent codec with the same limit and keys. The
// keys and their tag state are shared, not derived again: neither is ever
// written after SetKeys (which replaces them), and the ciphers are safe
// for concurrent use; the scratch space is the clone's own.
func (c *Codec) Clone() *Codec {
	return &Codec{limit: c.limit, key: c.key, prev: c.prev, tk: c.tk, ptk: c.ptk}
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
	// The encoder owns b: M is b itself with the tag field zeroed.
	clear(tag)
	copy(tag, c.tagOf(c.tk, b))
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

// tagOf returns the keyed tag of m, a datagram whose tag field is zero,
// in the codec's scratch space: GHASH with the GCM mask under Kg, then
// one AES block under Kp.
func (c *Codec) tagOf(k *tagKey, m []byte) []byte {
	g := k.gh.Seal(c.ghash[:0], tagNonce[:], nil, m)
	k.prp.Encrypt(c.tag[:], g)
	return c.tag[:]
}

// verify checks the integrity field of a datagram whose header parsed.
// With owned, the caller holds b alone until verify returns: the keyed
// check zeroes the tag field in place and puts it back, instead of
// copying the datagram (DecodeOwned).
func (c *Codec) verify(b []byte, owned bool) Reason {
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
	if owned {
		var got [SizeTag]byte
		copy(got[:], tag)
		clear(tag)
		r := c.checkTag(got[:], b)
		copy(tag, got[:])
		return r
	}
	if cap(c.scratch) < len(b) {
		c.scratch = make([]byte, len(b))
	}
	m := c.scratch[:len(b)]
	copy(m, b)
	clear(m[OffTag : OffTag+SizeTag])
	return c.checkTag(tag, m)
}

// checkTag compares tag with the keyed tag of m (whose tag field is zero)
// under the current key, then the previous one.
func (c *Codec) checkTag(tag, m []byte) Reason {
	if subtle.ConstantTimeCompare(tag, c.tagOf(c.tk, m)) == 1 {
		return ReasonNone
	}
	if c.ptk != nil && subtle.ConstantTimeCompare(tag, c.tagOf(c.ptk, m)) == 1 {
		return ReasonNone
	}
	return ReasonTag
}

// Decode validates datagram b (size, magic, version, flags, lengths,
// integrity, parameters) and fills p with views into b. It returns
// ReasonNone or the first reason for rejection; reason.Errno() gives the
// error number. Decode never reads outside b and allocates nothing in
// steady state: a keyed codec allocates only when b is longer than every
// datagram it verified before (its verify copy grows once to that size).
func (c *Codec) Decode(p *Packet, b []byte) Reason { return c.decode(p, b, false) }

// DecodeOwned is Decode of a datagram that no other goroutine reads or
// writes until it returns, such as a receive buffer of the goroutine
// calling it. A keyed codec then checks the tag in b itself (the tag
// field zeroed during the check, and put back before it returns) instead
// of in a copy, and allocates nothing. b is as it was on return.
func (c *Codec) DecodeOwned(p *Packet, b []byte) Reason { return c.decode(p, b, true) }

func (c *Codec) decode(p *Packet, b []byte, owned bool) Reason {
	if r := parseHeader(p, b, c.limit); r != ReasonNone {
		return r
	}
	if r := c.verify(b, owned); r != ReasonNone {
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
