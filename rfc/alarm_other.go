//go:build !linux

package rfc

// newAlarm returns nil: without a timerfd the timer goroutine sleeps on
// a runtime timer.
func newAlarm() *alarm { return nil }
