// Package bench measures fastcall against what users would pick instead.
// Each case runs every system on the same workload shape, after a warm-up,
// for a set time, several rounds interleaved so that a noisy neighbour
// hurts every system alike; results are medians with the spread of the
// rounds. The harness is bench/cmd/fcbench, run by `make bench`; it writes
// bench/RESULTS.md. `fcbench -case calls -systems KEYS` runs some of the
// calls case's systems (SystemKeys names them), a partial run.
//
// A case that needs a second process re-executes this binary with the
// job in its environment (child.go, ChildMain). The calls case's
// cross-process rows ("raw UDP echo, server in a child process" and
// "fastcall, server in a child process") start their server child once,
// with this process's environment, GOMAXPROCS and CPU set, and call it
// from this process; their rounds are interleaved with the in-process
// systems'. The raw echo child is one goroutine reading with
// ReadFromUDPAddrPort into one 64 KiB buffer and writing the datagram
// back; the fastcall child is an endpoint with the builtin echo in
// checksum mode. A round of one caller runs with every thread of this
// process and of the child pinned to one CPU, the same for both rows
// (pinRound): left to the scheduler, an idle machine wakes the other
// process on its other, idle CPU, which on a virtual machine costs tens of
// microseconds a call, in some rounds and not in others
// (bench/calls-context.md). Rounds of 32 callers run unpinned.
//
// Peers that need other modules (gRPC-go, hashicorp/memberlist) live in the
// nested module bench/peers so that the main module keeps its four
// dependencies.
package bench
