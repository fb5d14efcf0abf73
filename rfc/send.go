package rfc

// sendLoop is the sender goroutine of CoalesceSends: it takes every request
// queued at the moment, copies each into its batch, and sends them all
// with one sendmmsg.
func (ep *Endpoint) sendLoop(bc batchConn) {
	defer ep.wg.Done()
	n := ep.cfg.BatchSize
	ms := make([]message, n)
	for i := range ms {
		ms[i].buf = make([]byte, ep.cfg.MaxDatagram)
	}
	w := newWriter(n)
	for {
		var e timerEntry
		select {
		case e = <-ep.sendQ:
		case <-ep.done:
			return
		}
		k := 0
		for {
			if ep.copyRequest(e, &ms[k]) {
				k++
			}
			if k == n {
				break
			}
			select {
			case e = <-ep.sendQ:
				continue
			default:
			}
			break
		}
		if k == 0 {
			continue
		}
		sent, _ := bc.write(w, ms[:k])
		ep.stats.tx.Add(uint64(sent))
		if sent < k {
			ep.stats.sendErrs.Add(uint64(k - sent))
		}
	}
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
