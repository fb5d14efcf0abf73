package registry

import (
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// AppendOp appends the operation parameters of a write request (OpParams).
func AppendOp(ps *wire.Params, id sdk.OpID) {
	ps.Uint64(id.Client)
	ps.Uint64(id.Seq)
}

// OpOf returns the operation named by the last OpParams parameters of req.
func OpOf(req *rfc.Request) sdk.OpID {
	n := req.NParams()
	return sdk.OpID{Client: req.Param(n - 2).Uint64(), Seq: req.Param(n - 1).Uint64()}
}
