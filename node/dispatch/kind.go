package dispatch

import "fastcall/wire"

// Kind is an operation kind. The conflict table says which kinds may hold
// one resource at the same time. The list is append-only: kinds travel in
// markers and in the SUBMIT call.
type Kind uint8

const (
	KindInvalid Kind = 0
	KindRead    Kind = 1 // conflicts with a delete
	KindUpdate  Kind = 2 // conflicts with an update or a delete
	KindDelete  Kind = 3 // conflicts with everything
	kindLimit   Kind = 4
)

// kindNames has a name for every kind below kindLimit.
var kindNames = wire.Names{
	KindInvalid: "invalid",
	KindRead:    "read",
	KindUpdate:  "update",
	KindDelete:  "delete",
}

// String returns the kind's name as SUBMIT and rfcctl spell it.
func (k Kind) String() string {
	if s, ok := kindNames.Name(uint64(k)); ok {
		return s
	}
	return "kind?"
}

// KindByName is the inverse of String; "invalid" is not a name.
func KindByName(s string) (Kind, bool) {
	k, ok := kindNames.Value(s, uint64(KindRead))
	return Kind(k), ok
}

// conflictTable[held][wanted] is true when an operation of kind wanted
// must be refused while one of kind held holds the resource. It is
// symmetric.
//
//	held \ wanted   read   update  delete
//	read            -      -       X
//	update          -      X       X
//	delete          X      X       X
var conflictTable = [kindLimit][kindLimit]bool{
	KindRead:   {KindDelete: true},
	KindUpdate: {KindUpdate: true, KindDelete: true},
	KindDelete: {KindRead: true, KindUpdate: true, KindDelete: true},
}

// Conflicts reports whether an operation of kind wanted conflicts with
// one of kind held. An invalid kind conflicts with everything.
func Conflicts(held, wanted Kind) bool {
	if held == KindInvalid || wanted == KindInvalid || held >= kindLimit || wanted >= kindLimit {
		return true
	}
	return conflictTable[held][wanted]
}

// State is where an operation is in its life cycle.
type State uint8

const (
	StatePending State = 1 // marker set, calls queued, nothing sent yet
	StateRunning State = 2 // calls being sent or awaited
	StateDone    State = 3 // every target has an outcome and the marker is released
)

// String returns "pending", "running" or "done".
func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateRunning:
		return "running"
	case StateDone:
		return "done"
	}
	return "state?"
}
