//go:build !linux

package sdk

import "fastcall/wire"

// seqMap is not available off Linux: readers decode the map on every
// lookup.
type seqMap struct{}

func openSeq(path string, create bool) (*seqMap, error) { return nil, wire.ENOSYS }
func (s *seqMap) load() uint64                          { return 0 }
func (s *seqMap) bump()                                 {}
func (s *seqMap) close()                                {}
