// Package audit is the router's audit trail: one text record per routed
// call (Record, formatted by AppendLine and parsed by ParseLine), written
// by one writer goroutine (Log) to append-only files with size-based
// rotation and a bound on the files kept, and the scan of those files
// that answers audit queries (Scan, Filter). The file format and its
// vector are specified in docs/ROUTE.md, "Audit trail".
//
// Goroutines: Log.Start starts the writer, the only goroutine of the
// package. Submit never blocks: a full queue drops the record and counts
// it. The router (package route) fills the records, checks the
// configuration and serves the queries over rfc.
package audit
