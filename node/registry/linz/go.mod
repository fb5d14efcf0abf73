module fastcall/node/registry/linz

go 1.26.0

require fastcall v0.0.0

require golang.org/x/sys v0.49.0 // indirect

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
)

replace fastcall => ../../..
