// Package wire owns the bytes of fastcall's one datagram format: the fixed
// header, the typed parameter segment, the checksum and the keyed
// authentication tag, and the error numbers shared by every package.
//
// It knows bytes only: no sockets, no goroutines, no fmt, no reflection.
// Encoders write into caller-owned buffers and decoders return views that
// point into the datagram; neither allocates. All multi-byte integers are
// big-endian (network byte order).
//
// The byte-level specification is docs/PROTOCOL.md; the test vectors in that
// document are decoded and re-encoded by TestProtocolVectors.
package wire
