// Package sim holds the deterministic simulation scenarios of fastcall
// (docs/SIMULATION.md): whole clusters run in one test process on the
// simulated network of rfc/simnet, inside a testing/synctest bubble, so
// that time is virtual. One seed gives one random workload and fault
// schedule; invariant checkers fail with the seed and a trace of the
// events that led there, and the same seed replays the same run.
//
// The scenarios are tests (go test ./node/sim, or make sim); the package
// has no code of its own that production links.
package sim
