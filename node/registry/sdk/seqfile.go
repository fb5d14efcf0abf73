package sdk

// Change-sequence file (docs/REGISTRY.md, "SDK value format"). Next to
// the map file "<path>" the agent keeps "<path>.seq", SeqFileSize bytes:
//
//	[0:8]   magic     SeqMagic
//	[8:16]  sequence  u64, native (little-endian) byte order, written
//	                  atomically by the agent after every map write
//
// A reader that saw sequence s and finds it unchanged knows the map has
// not been written since (by the agent: other writers are not tracked), so
// it may answer from what it decoded before. The sequence only grows.
const (
	SeqSuffix    = ".seq"
	SeqMagic     = "FCREGSEQ"
	OffSeqMagic  = 0
	SizeSeqMagic = 8
	OffSeq       = OffSeqMagic + SizeSeqMagic
	SizeSeq      = 8
	SeqFileSize  = 4096
)
