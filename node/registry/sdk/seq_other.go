//go:build !linux

package sdk

import "fastcall/wire"

// seqMap is not available off Linux: readers decode the map on every
// lookup.
type seqMap struct{}

func openSeq(path string, create bool) (*seqMap, error) { return nil, wire.ENOSYS }
func (s *seqMap) load() (uint64, bool)                  { return 0, false }
func (s *seqMap) add(d uint64) (uint64, bool)           { return 0, false }
func (s *seqMap) store(v uint64) bool                   { return false }
func (s *seqMap) close()                                {}
