package simnet

import (
	"encoding/binary"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"fastcall/wire"
)

// Event is one entry of a Trace: when (virtual time since the trace
// began), what, between which addresses, and a short description.
//
// Note is shown but left out of the trace's hash: it holds what depends
// on the order in which goroutines of one instant ran (a call id), not on
// what the run did.
type Event struct {
	At       time.Duration
	Kind     string
	Src, Dst netip.AddrPort
	Info     string
	Note     string
}

// String formats the event on one line.
func (e Event) String() string {
	s := e.At.String() + " " + e.Kind
	if e.Src.IsValid() {
		s += " " + e.Src.String()
	}
	if e.Dst.IsValid() {
		s += " -> " + e.Dst.String()
	}
	if e.Info != "" {
		s += " " + e.Info
	}
	if e.Note != "" {
		s += " " + e.Note
	}
	return s
}

// Trace records the events of one simulated run: the last Keep of them
// in full, and of all of them a count and a hash. The hash is the sum of
// the events' own hashes, so it does not depend on the order in which
// goroutines recorded events of the same instant; two runs of one seed
// that behave alike have equal hashes. Safe for concurrent use.
type Trace struct {
	start time.Time
	mu    struct {
		sync.Mutex
		ring  []Event
		next  int
		count uint64
		sum   uint64
		buf   []byte
	}
}

// DefaultKeep is how many events a Trace keeps in full by default.
const DefaultKeep = 4096

// NewTrace returns a trace that keeps the last keep events (DefaultKeep
// if keep <= 0), with its clock starting now.
func NewTrace(keep int) *Trace {
	if keep <= 0 {
		keep = DefaultKeep
	}
	t := &Trace{start: time.Now()}
	t.mu.ring = make([]Event, 0, keep)
	return t
}

// Since returns the trace's clock: virtual time since it began.
func (t *Trace) Since() time.Duration { return time.Since(t.start) }

// Add records an event.
func (t *Trace) Add(kind string, src, dst netip.AddrPort, info string) {
	t.add(Event{At: time.Since(t.start), Kind: kind, Src: src, Dst: dst, Info: info})
}

func (t *Trace) add(e Event) {
	kind, src, dst, info := e.Kind, e.Src, e.Dst, e.Info
	t.mu.Lock()
	b := t.mu.buf[:0]
	b = binary.BigEndian.AppendUint64(b, uint64(e.At))
	b = append(b, kind...)
	b = append(b, 0)
	b, _ = src.AppendBinary(b)
	b, _ = dst.AppendBinary(b)
	b = append(b, info...)
	t.mu.buf = b
	t.mu.sum += xxhash.Sum64(b)
	t.mu.count++
	if len(t.mu.ring) < cap(t.mu.ring) {
		t.mu.ring = append(t.mu.ring, e)
	} else {
		t.mu.ring[t.mu.next] = e
		t.mu.next = (t.mu.next + 1) % len(t.mu.ring)
	}
	t.mu.Unlock()
}

// AddPacket records an event about a datagram, described by its header.
func (t *Trace) AddPacket(kind string, src, dst netip.AddrPort, b []byte) {
	info, note := Describe(b)
	t.add(Event{At: time.Since(t.start), Kind: kind, Src: src, Dst: dst, Info: info, Note: note})
}

// Describe summarises a datagram by its header: request or reply, call
// number, error number, retransmission; and apart, in note, its call id.
// It reads only what is there.
func Describe(b []byte) (info, note string) {
	if len(b) < wire.HeaderSize {
		return "short len=" + strconv.Itoa(len(b)), ""
	}
	f := b[wire.OffFlags]
	s := "rep"
	if f&wire.FlagRequest != 0 {
		s = "req"
	}
	s += " call=" + strconv.FormatUint(uint64(binary.BigEndian.Uint16(b[wire.OffCallNo:])), 16)
	note = "id=" + strconv.FormatUint(binary.BigEndian.Uint64(b[wire.OffCallID:]), 16)
	if e := binary.BigEndian.Uint16(b[wire.OffErrno:]); e != 0 {
		s += " err=" + wire.Errno(e).String()
	}
	if f&wire.FlagRetrans != 0 {
		s += " retrans"
	}
	if f&wire.FlagOneWay != 0 {
		s += " oneway"
	}
	return s, note
}

// Hash returns the number of events recorded and their order-free hash.
func (t *Trace) Hash() (count, sum uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.count, t.mu.sum
}

// Events returns the kept events, oldest first.
func (t *Trace) Events() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Event, 0, len(t.mu.ring))
	out = append(out, t.mu.ring[t.mu.next:]...)
	out = append(out, t.mu.ring[:t.mu.next]...)
	return out
}

// Dump writes the last n kept events (all kept if n <= 0), one a line.
func (t *Trace) Dump(w io.Writer, n int) {
	ev := t.Events()
	if n > 0 && len(ev) > n {
		ev = ev[len(ev)-n:]
	}
	for _, e := range ev {
		io.WriteString(w, e.String()+"\n")
	}
}
