//go:build !linux

package rfc

// alarmSpec is unused where there is no alarm.
type alarmSpec struct{}

// newAlarm returns nil: without a timerfd the timer goroutine sleeps on
// a runtime timer.
func newAlarm() *alarm { return nil }
