package bench

import (
	"fmt"

	"fastcall/rfc/simnet"
)

// LossBase is the loss table's reference row: fastcall through the relay
// with no loss.
const LossBase = "fastcall via relay, 0% loss"

// LossShapes are the shapes of the loss case.
var LossShapes = []Shape{{1, 64}, {32, 64}}

// LossSystems are fastcall direct, and through the user-space relay of
// package simnet (simnet.Relay) at 0%, 1% and 5% loss each way.
func LossSystems() []System {
	return []System{&fastcallSys{}, &lossySys{loss: 0}, &lossySys{loss: 0.01}, &lossySys{loss: 0.05}}
}

// lossySys is fastcall's echo call with a simnet.Relay between client
// and server that drops each datagram with probability loss, each way.
type lossySys struct {
	fastcallSys
	loss  float64
	relay *simnet.Relay
}

func (s *lossySys) Name() string {
	if s.loss == 0 {
		return LossBase
	}
	return fmt.Sprintf("fastcall via relay, %g%% loss", s.loss*100)
}

func (s *lossySys) Start() error {
	if err := s.fastcallSys.Start(); err != nil {
		return err
	}
	r, err := simnet.NewRelay(s.addr, simnet.RelayConfig{Faults: simnet.Faults{Loss: s.loss}, Seed: 1})
	if err != nil {
		s.fastcallSys.Stop()
		return err
	}
	s.relay = r
	return nil
}

func (s *lossySys) Client(callers, size int) (func(int) bool, func(), error) {
	return s.fastcallSys.clientTo(callers, size, s.relay.Addr())
}

func (s *lossySys) Stop() {
	s.relay.Close()
	s.fastcallSys.Stop()
}
