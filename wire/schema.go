package wire

// Schema is the ordered list of parameter types a call number accepts.
// A nil Schema accepts no parameters.
type Schema []Type

// Match reports whether the decoded parameters of p have exactly the
// schema's count and types, in order. rfc applies it before any handler
// runs and answers EINVAL on a mismatch.
func (s Schema) Match(p *Packet) bool {
	if p.nparams != len(s) {
		return false
	}
	for i, t := range s {
		if p.params[i].typ != t {
			return false
		}
	}
	return true
}

// Check returns OK when p matches the schema and EINVAL otherwise.
func (s Schema) Check(p *Packet) Errno {
	if s.Match(p) {
		return OK
	}
	return EINVAL
}
