package rfc

import (
	"sync"
	"sync/atomic"
)

// Combined sends (Config.CoalesceSends). Callers that send at the same
// moment share one sendmmsg, without a sender goroutine to hand their
// requests to: the first caller to send while nobody else is sending
// becomes the combiner. It sends its own request at once, then, round
// after round, takes the requests other callers queued meanwhile and
// sends each round's with one sendmmsg. A caller that finds a combiner at
// work queues a reference to its call and goes on to wait for its reply.
//
// A combiner gives up the role after combineRounds rounds, so that no
// caller is kept from its own reply for long: its last round takes every
// queued request and clears the role in one critical section, so a
// request queued before it is in that round, and a caller coming after it
// becomes the next combiner. Requests are copied out of their calls under
// the call's lock, so a call that ended or was abandoned meanwhile is
// skipped, and each combiner sends from buffers of its own.
type combiner struct {
	mu      sync.Mutex
	active  bool            // a caller is combining
	q       []timerEntry    // queued calls (call id and slot); cap BatchSize
	batches chan *sendBatch // free batches, one per combiner at work
	bc      batchConn
	others  atomic.Uint64 // requests a combiner sent for other callers
}

// combineRounds bounds how many rounds one combiner sends for others.
const combineRounds = 2

// sendBatch is a combiner's own buffers for one round.
type sendBatch struct {
	refs []timerEntry
	ms   []message
	w    *writeState
}

func (c *combiner) init(bc batchConn, size, maxDatagram int) {
	c.bc = bc
	c.q = make([]timerEntry, 0, size)
	// A new combiner starts only after the last one cleared the role, so
	// besides its batch only earlier combiners' last rounds hold one.
	c.batches = make(chan *sendBatch, 2)
	for i := 0; i < 2; i++ {
		b := &sendBatch{refs: make([]timerEntry, size), ms: make([]message, size), w: newWriter(size)}
		for j := range b.ms {
			b.ms[j].buf = make([]byte, maxDatagram)
		}
		c.batches <- b
	}
}

// enqueue is called with the call's lock held, before its request is
// sent. It returns queued when the current combiner will send the
// request, and combine when the caller is now the combiner (it sends its
// own request, then calls ep.combine after unlocking the call).
func (c *combiner) enqueue(e timerEntry) (queued, combine bool) {
	c.mu.Lock()
	switch {
	case !c.active:
		c.active = true
		combine = true
	case len(c.q) < cap(c.q):
		c.q = append(c.q, e)
		queued = true
	}
	c.mu.Unlock()
	return queued, combine
}

// combine runs the combiner's rounds (see combiner).
func (ep *Endpoint) combine() {
	c := &ep.comb
	// Only the combiner before this one may still hold a batch, for the
	// one sendmmsg of its last round; two earlier ones, rarely.
	b := <-c.batches
	for round := 1; ; round++ {
		c.mu.Lock()
		k := copy(b.refs, c.q)
		c.q = c.q[:0]
		last := k == 0 || round == combineRounds
		if last {
			c.active = false
		}
		c.mu.Unlock()
		j := 0
		for i := 0; i < k; i++ {
			if ep.copyRequest(b.refs[i], &b.ms[j]) {
				j++
			}
		}
		if j > 0 {
			c.others.Add(uint64(j))
			sent, _ := c.bc.write(b.w, b.ms[:j])
			ep.stats.tx.Add(uint64(sent))
			if sent < j {
				ep.stats.sendErrs.Add(uint64(j - sent))
			}
		}
		if last {
			break
		}
	}
	c.batches <- b
}

// copyRequest copies the request of a still-waiting call into m.
func (ep *Endpoint) copyRequest(e timerEntry, m *message) bool {
	p := &ep.pending.slots[e.idx]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.state != slotWaiting || p.mu.callID != e.id {
		return false
	}
	m.n = copy(m.buf, p.mu.req[:p.mu.reqLen])
	m.addr = p.mu.dst
	return true
}
