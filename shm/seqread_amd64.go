package shm

// seqReads enables Get's optimistic path (seqread.go). It relies on the
// processor keeping loads in program order with respect to other loads and
// stores in program order with respect to other stores (x86-TSO): the data
// loads of a lookup complete before the second load of the write sequence,
// and a writer's stores to the file become visible after its store of an
// odd sequence and before its store of the next even one. The compiler
// keeps the order too: the plain loads of the lookup sit between two atomic
// loads, and the writer's stores between two atomic stores.
const seqReads = true
