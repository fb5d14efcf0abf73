package wire

// Header holds the fields of a datagram header other than the magic,
// version, parameter count and length, and tag, which the codec fills in.
type Header struct {
	Flags       uint8
	CallNo      uint16
	Errno       Errno
	Src         uint32 // source node id
	Dst         uint32 // destination node id (0: whoever listens)
	CallID      uint64
	Incarnation uint32 // sender's incarnation
	PeerInc     uint32 // requests: the receiver's incarnation as the sender last heard it; 0 = unknown
	Budget      uint32 // remaining deadline in microseconds; 0 = none
	Stamp       uint32 // sender's clock, milliseconds since the Unix epoch mod 2^32
}

// paramRef locates one parameter value inside the datagram.
type paramRef struct {
	off uint16
	n   uint16
	typ Type
}

// Packet is a decoded datagram: the header fields and a table of
// parameter views into the datagram buffer. A Packet is meant to be
// reused; Decode overwrites it. Its views are valid while the datagram
// buffer is unchanged.
type Packet struct {
	Header
	Len int // datagram length
	// Verified is true once the integrity field was checked: a datagram
	// rejected with Verified set is exactly what its sender sent, so an
	// error reply to it is safe.
	Verified bool
	buf      []byte
	nparams  int
	plen     int
	params   [MaxParams]paramRef
}

// NParams returns the number of parameters.
func (p *Packet) NParams() int { return p.nparams }

// Param returns parameter i; a Value of TypeInvalid if i is out of range.
func (p *Packet) Param(i int) Value {
	if uint(i) >= uint(p.nparams) {
		return Value{}
	}
	r := p.params[i]
	return Value{Type: r.typ, Raw: p.buf[r.off : int(r.off)+int(r.n)]}
}

// Rebase points the packet's views at b, which must hold a copy of the
// datagram the packet was decoded from (same length). It lets a decoded
// packet move to another buffer without decoding again.
func (p *Packet) Rebase(b []byte) {
	if len(b) == p.Len {
		p.buf = b
	}
}

// Segment returns the encoded parameter segment.
func (p *Packet) Segment() []byte { return p.buf[HeaderSize : HeaderSize+p.plen] }

// Datagram returns the whole datagram the packet was decoded from.
func (p *Packet) Datagram() []byte { return p.buf }

// checkFlags validates flag combinations together with the error field.
func checkFlags(f uint8, e Errno) Reason {
	if f&flagReserved != 0 {
		return ReasonFlags
	}
	req, rep := f&FlagRequest != 0, f&FlagReply != 0
	if req == rep {
		return ReasonFlags
	}
	if req && f&FlagError != 0 {
		return ReasonFlags
	}
	if rep && (f&FlagOneWay != 0 || f&FlagRetrans != 0) {
		return ReasonFlags
	}
	if (f&FlagError != 0) != (e != OK) {
		return ReasonErrno
	}
	return ReasonNone
}

// parseHeader checks the fixed header of b against limit and fills p.
// It does not check the tag.
func parseHeader(p *Packet, b []byte, limit int) Reason {
	p.Verified = false
	if len(b) < HeaderSize {
		return ReasonShort
	}
	if len(b) > limit {
		return ReasonTooBig
	}
	if be16(b[OffMagic:]) != Magic {
		return ReasonMagic
	}
	if b[OffVersion] != Version {
		return ReasonVersion
	}
	p.Flags = b[OffFlags]
	p.CallNo = be16(b[OffCallNo:])
	p.Errno = Errno(be16(b[OffErrno:]))
	if r := checkFlags(p.Flags, p.Errno); r != ReasonNone {
		return r
	}
	p.Src = be32(b[OffSrc:])
	p.Dst = be32(b[OffDst:])
	p.CallID = be64(b[OffCallID:])
	p.Incarnation = be32(b[OffIncarn:])
	p.PeerInc = be32(b[OffPeerInc:])
	p.Budget = be32(b[OffBudget:])
	p.Stamp = be32(b[OffStamp:])
	n := int(be16(b[OffNParams:]))
	plen := int(be16(b[OffPLen:]))
	if HeaderSize+plen != len(b) {
		return ReasonLength
	}
	if n > MaxParams || n*ParamHdrSize > plen {
		return ReasonParamCount
	}
	p.nparams = n
	p.plen = plen
	p.buf = b
	p.Len = len(b)
	return ReasonNone
}

// parseParams checks the packet's parameters with parseSegment and fills
// the view table. The segment runs from HeaderSize to the end of the
// datagram (parseHeader checked that the lengths agree).
func parseParams(p *Packet) Reason {
	_, r := parseSegment(p.buf, HeaderSize, p.params[:p.nparams], true)
	return r
}

// writeHeader writes h and the segment shape into b[:HeaderSize] and
// zeroes the tag field.
func writeHeader(b []byte, h *Header, count, plen int) {
	put16(b[OffMagic:], Magic)
	b[OffVersion] = Version
	b[OffFlags] = h.Flags
	put16(b[OffCallNo:], h.CallNo)
	put16(b[OffErrno:], uint16(h.Errno))
	put32(b[OffSrc:], h.Src)
	put32(b[OffDst:], h.Dst)
	put64(b[OffCallID:], h.CallID)
	put32(b[OffIncarn:], h.Incarnation)
	put32(b[OffPeerInc:], h.PeerInc)
	put32(b[OffBudget:], h.Budget)
	put32(b[OffStamp:], h.Stamp)
	put16(b[OffNParams:], uint16(count))
	put16(b[OffPLen:], uint16(plen))
	clear(b[OffTag : OffTag+SizeTag])
}
