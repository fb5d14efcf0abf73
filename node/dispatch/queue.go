package dispatch

import "sync"

// chunk is a run of consecutive targets of one operation waiting to be
// sent: targets from..to-1.
type chunk struct {
	op       *operation
	from, to int
}

// sendQueue is the bounded FIFO of calls accepted but not yet sent. It
// counts calls, not chunks: an operation reserves room for all its calls
// before its marker is set (reserve), then pushes them as one chunk
// (push) or gives the room back (unreserve). Senders take at most a batch
// of calls at a time (take). The bound is Config.QueueLen calls; the
// chunk slice holds at most one chunk per active operation.
type sendQueue struct {
	limit int
	wake  chan struct{} // cap 1: work arrived, or is left after a take

	mu struct {
		sync.Mutex
		chunks   []chunk
		head     int // first live chunk
		calls    int // calls in chunks
		reserved int // calls reserved but not pushed
	}
}

func (q *sendQueue) init(limit int) {
	q.limit = limit
	q.wake = make(chan struct{}, 1)
}

// reserve takes room for n calls; false if it does not fit.
func (q *sendQueue) reserve(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.mu.calls+q.mu.reserved+n > q.limit {
		return false
	}
	q.mu.reserved += n
	return true
}

// unreserve gives back room taken by reserve.
func (q *sendQueue) unreserve(n int) {
	q.mu.Lock()
	q.mu.reserved -= n
	q.mu.Unlock()
}

// push turns a reservation into a queued chunk.
func (q *sendQueue) push(c chunk) {
	n := c.to - c.from
	q.mu.Lock()
	q.mu.reserved -= n
	q.mu.calls += n
	q.mu.chunks = append(q.mu.chunks, c)
	q.mu.Unlock()
	q.signal()
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes up to max calls from the head, all of one operation.
// It wakes another sender if work is left.
func (q *sendQueue) take(max int) (chunk, bool) {
	q.mu.Lock()
	if q.mu.head == len(q.mu.chunks) {
		q.mu.Unlock()
		return chunk{}, false
	}
	h := &q.mu.chunks[q.mu.head]
	c := *h
	if c.to-c.from > max {
		c.to = c.from + max
		h.from = c.to
	} else {
		*h = chunk{}
		q.mu.head++
	}
	q.mu.calls -= c.to - c.from
	switch {
	case q.mu.head == len(q.mu.chunks):
		q.mu.chunks = q.mu.chunks[:0]
		q.mu.head = 0
	case q.mu.head >= 64 && q.mu.head*2 >= len(q.mu.chunks):
		n := copy(q.mu.chunks, q.mu.chunks[q.mu.head:])
		clear(q.mu.chunks[n:])
		q.mu.chunks = q.mu.chunks[:n]
		q.mu.head = 0
	}
	more := q.mu.head < len(q.mu.chunks)
	q.mu.Unlock()
	if more {
		q.signal()
	}
	return c, true
}

// len returns the calls queued and reserved.
func (q *sendQueue) len() (queued, reserved int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.calls, q.mu.reserved
}
