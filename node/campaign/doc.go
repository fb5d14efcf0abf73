// Package campaign is fastcall's fault campaign: tests that run the landed
// services through hostile conditions (loss, duplication, reordering,
// corruption, killed processes, several network namespaces, attacks) and
// check the invariants that matter — every call that returned success ran
// exactly once, every other call returned an error number, no node
// crashed. The tests run in `make test` at bounded sizes; -campaign.long
// multiplies the sizes. `make reliability` runs them and writes
// docs/RELIABILITY.md from what they measured.
package campaign
