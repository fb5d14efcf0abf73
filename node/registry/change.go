package registry

import "encoding/binary"

// NextChange decodes the change at batch[off:]: u16 key length, key, u16
// record length, record. next < 0 if it runs past the batch.
func NextChange(b []byte, off int) (key, rec []byte, next int) {
	if len(b)-off < 2 {
		return nil, nil, -1
	}
	kl := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if len(b)-off < kl+2 {
		return nil, nil, -1
	}
	key = b[off : off+kl]
	off += kl
	rl := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if len(b)-off < rl {
		return nil, nil, -1
	}
	return key, b[off : off+rl], off + rl
}
