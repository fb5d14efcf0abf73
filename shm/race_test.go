//go:build race

package shm

// raceEnabled thins the longest exhaustive tests under the race detector.
const raceEnabled = true
