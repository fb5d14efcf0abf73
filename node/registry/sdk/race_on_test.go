//go:build race

package sdk

// raceEnabled reports a -race build: the race detector runs atomic
// operations in its own code, where a fault cannot be recovered.
const raceEnabled = true
