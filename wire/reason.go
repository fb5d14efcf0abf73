package wire

// Reason says why a datagram was rejected. Zero means accepted. Each reason
// maps to the error number that a reply (where one is safe) would carry.
type Reason uint8

const (
	ReasonNone       Reason = iota // accepted
	ReasonShort                    // shorter than the header
	ReasonTooBig                   // longer than the codec's limit
	ReasonMagic                    // bad magic
	ReasonVersion                  // unknown version
	ReasonFlags                    // reserved bits or inconsistent flags
	ReasonLength                   // parameter length disagrees with the datagram
	ReasonParamCount               // more than MaxParams, more than the segment can hold, or the segment ends before them
	ReasonParamType                // unknown parameter type
	ReasonParamLen                 // parameter length wrong for its type or past the segment
	ReasonBool                     // bool value other than 0 or 1
	ReasonUTF8                     // string parameter is not valid UTF-8
	ReasonErrno                    // error field and error flag disagree
	ReasonChecksum                 // checksum mismatch
	ReasonTag                      // authentication tag mismatch, or no key to check it
	ReasonUnauth                   // unauthenticated datagram where a key is required
	ReasonTrailing                 // bytes left in the segment after the last parameter
	reasonLimit                    // number of reasons; keep last
)

// NumReasons is the number of reason codes, for counter arrays.
const NumReasons = int(reasonLimit)

var reasonNames = Names{
	ReasonNone:       "none",
	ReasonShort:      "short",
	ReasonTooBig:     "too-big",
	ReasonMagic:      "magic",
	ReasonVersion:    "version",
	ReasonFlags:      "flags",
	ReasonLength:     "length",
	ReasonParamCount: "count",
	ReasonParamType:  "param-type",
	ReasonParamLen:   "param-len",
	ReasonBool:       "bool",
	ReasonUTF8:       "utf8",
	ReasonErrno:      "errno",
	ReasonChecksum:   "checksum",
	ReasonTag:        "tag",
	ReasonUnauth:     "unauthenticated",
	ReasonTrailing:   "trailing",
}

func (r Reason) String() string { return reasonNames.String(uint64(r), "reason?") }

// Errno is the error number for a rejection: EPERM for authentication
// failures, EMSGSIZE for oversize datagrams, EPROTO for the rest.
func (r Reason) Errno() Errno {
	switch r {
	case ReasonNone:
		return OK
	case ReasonTag, ReasonUnauth:
		return EPERM
	case ReasonTooBig:
		return EMSGSIZE
	}
	return EPROTO
}
