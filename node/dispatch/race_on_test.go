//go:build race

package dispatch

// raceEnabled reports a -race build: timing measurements are skipped.
const raceEnabled = true
