package rfc

import "fastcall/wire"

// CallSpec is one row of a service's call table: the arguments of Register.
type CallSpec struct {
	No     uint16
	Name   string
	Schema wire.Schema
	Flags  CallFlags
	H      Handler
}

// RegisterCalls registers the calls of table, all or none: a row that
// Register would refuse (EINVAL), a number registered already or twice in
// the table (EEXIST) refuses the whole table with that error, and no row
// of it is registered. So a service whose start fails leaves no handler
// of its own behind on the endpoint, and may be started again there.
func (ep *Endpoint) RegisterCalls(table []CallSpec) error {
	ces := make([]*callEntry, len(table))
	for i := range table {
		c := &table[i]
		if c.No < wire.CallHeartbeatBase || c.H == nil {
			return wire.EINVAL
		}
		ces[i] = &callEntry{no: c.No, name: c.Name, schema: c.Schema, flags: c.Flags, h: c.H}
	}
	return ep.registerEntries(ces)
}
