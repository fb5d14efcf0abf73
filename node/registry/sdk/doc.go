// Package sdk reads the registry data a node agent keeps in its local
// shared-memory map (package shm), with no network call and without being
// linked with the node: any local process opens the map file read-only and
// decodes the entry records defined in record.go. The record format, the key
// namespace and the change-sequence file are specified in docs/REGISTRY.md,
// section "SDK value format"; package registry uses the same encoders for
// its store, its log, its pushes and its replies, so the bytes a process
// finds in the map are exactly the bytes the center holds.
//
// Concurrency: a Reader is not safe for concurrent use; give each goroutine
// its own (opening one costs two mappings). The encoders and decoders are
// pure functions over caller-owned slices.
package sdk
