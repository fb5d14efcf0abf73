package rfc

// Round-trip estimation after RFC 6298, in nanoseconds: smoothed RTT with
// gain 1/8, mean deviation with gain 1/4, RTO = SRTT + 4*RTTVAR clamped to
// [min, max]. Samples come only from calls answered without
// retransmission (Karn's rule).

// rttState is the estimator of one peer.
type rttState struct {
	srtt   int64 // 0: no sample yet
	rttvar int64
	rto    int64
}

// rttUpdate folds sample into s and returns the new state. It is a pure
// function so that the arithmetic can be table-tested.
func rttUpdate(s rttState, sample, min, max int64) rttState {
	if sample <= 0 {
		sample = 1
	}
	if s.srtt == 0 {
		s.srtt = sample
		s.rttvar = sample / 2
	} else {
		d := s.srtt - sample
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + sample) / 8
	}
	s.rto = clampRTO(s.srtt+4*s.rttvar, min, max)
	return s
}

// backoff doubles a retransmission timeout up to max.
func backoff(rto, max int64) int64 {
	if rto >= max/2 {
		return max
	}
	return 2 * rto
}

func clampRTO(v, min, max int64) int64 {
	if v < min {
		return min
	}
	if v > max {
		return max
	}
	return v
}
