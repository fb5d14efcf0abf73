// Package bench measures fastcall against what users would pick instead.
// Each case runs every system on the same workload shape, after a warm-up,
// for a set time, several rounds interleaved so that a noisy neighbour
// hurts every system alike; results are medians with the spread of the
// rounds. The harness is bench/cmd/fcbench, run by `make bench`; it writes
// bench/RESULTS.md.
//
// Peers that need other modules (gRPC-go, hashicorp/memberlist) live in the
// nested module bench/peers so that the main module keeps its four
// dependencies.
package bench
