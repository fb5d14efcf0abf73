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

// RegisterCalls registers the calls of table in order. It stops at the
// first call Register refuses and returns that error; the calls before it
// stay registered.
func (ep *Endpoint) RegisterCalls(table []CallSpec) error {
	for i := range table {
		c := &table[i]
		if err := ep.Register(c.No, c.Name, c.Schema, c.Flags, c.H); err != nil {
			return err
		}
	}
	return nil
}
