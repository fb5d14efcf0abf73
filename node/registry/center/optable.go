package center

import "fastcall/node/registry/sdk"

// opTable remembers the client operations (sdk.OpID) whose records this
// center applied, made here or at the other center, with the version each
// made, so that a retry of an operation, at either center, is answered
// rather than applied again (Center.write). It is filled from every
// record applied (client writes, replicas, anti-entropy, and the log at
// recovery) and forgets an operation opMemory after it was recorded, or
// sooner when it holds maxOps. Not safe for concurrent use: the center's
// mutex guards it.
type opTable struct {
	m    map[sdk.OpID]opDone // operation -> what it made
	ring []opRef             // recorded operations, oldest at head
	head int
	n    int
}

// opDone is what an operation made: a version of a key.
type opDone struct {
	key     string
	version uint64
}

// opRef is one recorded operation and when it was recorded.
type opRef struct {
	id   sdk.OpID
	atMs int64
}

// Bounds of the opTable.
const (
	opMemoryMs = 60_000  // an operation is remembered this long (ms)
	maxOps     = 1 << 16 // and at most this many operations are
)

func (t *opTable) init() {
	t.m = make(map[sdk.OpID]opDone)
	t.ring = make([]opRef, maxOps)
}

// add records that operation id made version of key at wall time nowMs.
// An operation already recorded keeps its first version: a later record
// of it is the same write taken again.
func (t *opTable) add(id sdk.OpID, key string, version uint64, nowMs int64) {
	if id == (sdk.OpID{}) {
		return
	}
	t.expire(nowMs)
	if _, ok := t.m[id]; ok {
		return
	}
	if t.n == len(t.ring) {
		t.drop()
	}
	t.ring[(t.head+t.n)%len(t.ring)] = opRef{id: id, atMs: nowMs}
	t.n++
	t.m[id] = opDone{key: key, version: version}
}

// find returns the version of key operation id made, if it is
// remembered. An operation recorded for another key is not found (a
// client that used one number twice).
func (t *opTable) find(id sdk.OpID, key string) (uint64, bool) {
	if id == (sdk.OpID{}) {
		return 0, false
	}
	d, ok := t.m[id]
	if !ok || d.key != key {
		return 0, false
	}
	return d.version, true
}

// expire forgets the operations recorded more than opMemoryMs before nowMs.
func (t *opTable) expire(nowMs int64) {
	for t.n > 0 && t.ring[t.head].atMs < nowMs-opMemoryMs {
		t.drop()
	}
}

func (t *opTable) drop() {
	delete(t.m, t.ring[t.head].id)
	t.ring[t.head] = opRef{}
	t.head = (t.head + 1) % len(t.ring)
	t.n--
}
