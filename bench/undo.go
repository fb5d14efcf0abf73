package bench

// undo is what a case's set-up opened, closed in reverse order by close:
// when the case ends, or at once when the set-up fails part way
// (closeOnError). A set-up embeds it and adds each thing it opens.
type undo []func()

// add records f, to run before everything recorded earlier.
func (u *undo) add(f func()) { *u = append(*u, f) }

// close runs what was recorded, the last first, and forgets it.
func (u *undo) close() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

// closeOnError is for a set-up's defer: it closes what was opened when
// the set-up returns with *err set.
func (u *undo) closeOnError(err *error) {
	if *err != nil {
		u.close()
	}
}
