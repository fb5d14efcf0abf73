// Package fuzz holds fastcall's fuzz targets. Each target is a native
// `go test -fuzz` function in a _test.go file named after the package it
// exercises; `make fuzz` runs every target for FUZZTIME and `make test`
// runs each for a few seconds. Seeds come from the specifications in docs/,
// and findings are kept under testdata/fuzz as regression seeds.
package fuzz
