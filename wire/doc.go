// Package wire owns the bytes of fastcall's one datagram format: the fixed
// header, the typed parameter segment, the checksum and the keyed
// authentication tag (GHASH by AES-GCM, then AES, under two keys derived
// from the cluster key with HKDF-SHA256), and the error numbers shared by
// every package.
//
// It knows bytes only: no sockets, no goroutines, no fmt, no reflection.
// Encoders write into caller-owned buffers and decoders return views that
// point into the datagram; neither allocates. All multi-byte integers are
// big-endian (network byte order).
//
// Every byte of a parameter segment is wire's: one parser checks
// parameters (Decode for a datagram, Walk and CheckSegment for a bare
// segment), Params builds segments (ReserveUint64 and SetUint64 fill a
// value known only later by index), and AppendValue and Params.ParseValue
// give a value's text form.
//
// The byte-level specification is docs/PROTOCOL.md; the test vectors in that
// document are decoded and re-encoded by TestProtocolVectors.
package wire
