package main

import (
	"io"
	"log/slog"
)

// quietLogger drops engine logs so command output stays readable.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
