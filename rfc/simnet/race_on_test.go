//go:build race

package simnet_test

// raceEnabled: the race detector randomizes the order in which the
// scheduler runs goroutines made ready together, so a seed does not
// replay exactly under -race.
const raceEnabled = true
