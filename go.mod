module fastcall

go 1.26.0

require github.com/cespare/xxhash/v2 v2.3.0

require (
	github.com/google/gofuzz v1.2.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
