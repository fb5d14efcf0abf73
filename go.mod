module fastcall

go 1.26.0

require (
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/google/gofuzz v1.2.0
	golang.org/x/sys v0.49.0
)

require golang.org/x/net v0.62.0
