package route

import (
	"log/slog"
	"time"

	"fastcall/node/route/audit"
	"fastcall/rfc"
	"fastcall/wire"
)

// Config configures a Router. Start from DefaultConfig and change what you
// need; New refuses out-of-range values with an *rfc.ConfigError carrying
// EINVAL.
type Config struct {
	// TablePrefix is the key prefix of the mount table in the
	// MountSource (default "kv/route/"). Mounts live under
	// TablePrefix+"mount", sub-clusters under TablePrefix+"cluster/".
	TablePrefix string
	// Calls are the routed call numbers (default NamespaceCalls()).
	// Each is registered on the endpoint as not idempotent, so that the
	// duplicate-request cache absorbs client retransmissions and a call
	// is forwarded at most once.
	Calls []RoutedCall
	// ForwardTimeout bounds one forwarding attempt to one member
	// (default 500ms). The whole call is also bounded by the client's
	// deadline less ReplyMargin.
	ForwardTimeout time.Duration
	// ReplyMargin is kept from the client's deadline so that the reply
	// reaches the client before it gives up (default 2ms).
	ReplyMargin time.Duration
	// ActivateTimeout bounds each CallSetRole call of a failover: the one
	// that fences (demotes) the failed member and the one that promotes a
	// standby (default 200ms).
	ActivateTimeout time.Duration
	// ProbeTimeout bounds the ping the router sends a member believed
	// active whose attempt got no answer within ForwardTimeout (default
	// 200ms). A member that answers is alive and is not replaced; only
	// the router's own evidence (this ping, or the engine holding the
	// member dead) leads to a failover, never a client's deadline.
	ProbeTimeout time.Duration
	// AuditDir is the directory of the audit files (default "audit"; it
	// is created with mode 0700 if missing). Empty disables auditing.
	AuditDir string
	// AuditRotateBytes is the size past which the current audit file is
	// closed and a new one started (default 64 MiB, at least 4 KiB).
	AuditRotateBytes int64
	// AuditFS holds the audit files (default nil: the operating
	// system's files, audit.OSFS); a simulation passes an audit.MemFS.
	AuditFS audit.FS
	// AuditKeep is how many audit files are kept, the current one
	// included; older ones are deleted at rotation (default 8).
	AuditKeep int
	// AuditBuffer bounds the records waiting for the writer (default
	// 16384). A record that finds the queue full is dropped and counted
	// (Router.AuditStats); forwarding never waits for the writer.
	AuditBuffer int
	// AuditValueMax cuts each rendered parameter value to this many
	// bytes (default 32; strings cut at a character boundary, bytes
	// rendered as hex of the first AuditValueMax bytes).
	AuditValueMax int
	// QueryScanBytes bounds the audit bytes one CallAudit page reads
	// (default 64 KiB, at least audit.ScanMin, at most 1 GiB); a page
	// that reaches it returns what it found and a cursor to continue.
	QueryScanBytes int64
	// QueryScanRate bounds the audit bytes read by the CallAudit pages
	// of all clients together, in bytes a second (default 32 MiB, at
	// least audit.ScanMin); up to 4 pages of QueryScanBytes may be read
	// at once after a quiet spell. A page that finds the allowance spent
	// is answered EBUSY without reading, and AuditQuery asks again after
	// a pause.
	QueryScanRate int64
	// Logger receives table changes and failovers; nil means
	// slog.Default(). Nothing is logged per call.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultTablePrefix      = "kv/route/"
	DefaultForwardTimeout   = 500 * time.Millisecond
	DefaultReplyMargin      = 2 * time.Millisecond
	DefaultActivateTimeout  = 200 * time.Millisecond
	DefaultProbeTimeout     = 200 * time.Millisecond
	DefaultAuditDir         = "audit"
	DefaultAuditRotateBytes = 64 << 20
	DefaultAuditKeep        = 8
	DefaultAuditBuffer      = 16384
	DefaultAuditValueMax    = 32
	DefaultQueryScanBytes   = 64 << 10
	DefaultQueryScanRate    = 32 << 20

	minRotateBytes = 4 << 10
	maxValueMax    = 128
	maxScanBytes   = 1 << 30
)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		TablePrefix:      DefaultTablePrefix,
		Calls:            NamespaceCalls(),
		ForwardTimeout:   DefaultForwardTimeout,
		ReplyMargin:      DefaultReplyMargin,
		ActivateTimeout:  DefaultActivateTimeout,
		ProbeTimeout:     DefaultProbeTimeout,
		AuditDir:         DefaultAuditDir,
		AuditRotateBytes: DefaultAuditRotateBytes,
		AuditKeep:        DefaultAuditKeep,
		AuditBuffer:      DefaultAuditBuffer,
		AuditValueMax:    DefaultAuditValueMax,
		QueryScanBytes:   DefaultQueryScanBytes,
		QueryScanRate:    DefaultQueryScanRate,
	}
}

// callBound is how long the router may hold a call to a sub-cluster of n
// members when the client set no deadline: an attempt per member, and a
// failover's ping, fence and promotions.
func (c *Config) callBound(n int) time.Duration {
	return time.Duration(n)*(c.ForwardTimeout+c.ActivateTimeout) + c.ProbeTimeout
}

func (c *Config) check() error {
	bad := func(f string, v any, why string) error { return rfc.BadConfig("route", f, v, why) }
	switch {
	case c.TablePrefix == "":
		return bad("TablePrefix", c.TablePrefix, "empty")
	case len(c.Calls) == 0:
		return bad("Calls", nil, "empty")
	case c.ForwardTimeout <= 0:
		return bad("ForwardTimeout", c.ForwardTimeout, "must be positive")
	case c.ReplyMargin < 0:
		return bad("ReplyMargin", c.ReplyMargin, "must not be negative")
	case c.ActivateTimeout <= 0:
		return bad("ActivateTimeout", c.ActivateTimeout, "must be positive")
	case c.ProbeTimeout <= 0:
		return bad("ProbeTimeout", c.ProbeTimeout, "must be positive")
	case c.AuditDir != "" && c.AuditRotateBytes < minRotateBytes:
		return bad("AuditRotateBytes", c.AuditRotateBytes, "must be at least 4096")
	case c.AuditDir != "" && c.AuditKeep < 1:
		return bad("AuditKeep", c.AuditKeep, "must be at least 1")
	case c.AuditDir != "" && (c.AuditBuffer < 1 || c.AuditBuffer > 1<<22):
		return bad("AuditBuffer", c.AuditBuffer, "must be between 1 and 4194304")
	case c.AuditValueMax < 1 || c.AuditValueMax > maxValueMax:
		return bad("AuditValueMax", c.AuditValueMax, "must be between 1 and 128")
	case c.QueryScanBytes < audit.ScanMin || c.QueryScanBytes > maxScanBytes:
		return bad("QueryScanBytes", c.QueryScanBytes, "must be between 2048 and 1073741824")
	case c.QueryScanRate < audit.ScanMin:
		return bad("QueryScanRate", c.QueryScanRate, "must be at least 2048")
	}
	for i, rc := range c.Calls {
		switch {
		case rc.No < CallNSPut || rc.No >= CallNSPut+RoutedOffset:
			return bad("Calls", rc.No, "call number outside 0x0410-0x042F")
		case !audit.ValidName(rc.Name):
			return bad("Calls", rc.Name, "name must be 1 to 64 bytes of UTF-8 without blanks or control bytes (the audit trail holds it as it is)")
		case len(rc.Schema) == 0 || rc.Schema[0] != wire.TypeString:
			return bad("Calls", rc.Name, "first parameter must be a str path")
		case len(rc.Schema)+ContextParams > wire.MaxParams:
			return bad("Calls", rc.Name, "too many parameters")
		}
		for _, o := range c.Calls[:i] {
			if o.No == rc.No {
				return bad("Calls", rc.No, "call number declared twice")
			}
		}
	}
	return nil
}
