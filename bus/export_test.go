package bus

import "time"

// SetReconnectDelay replaces the reconnect backoff for a test and returns
// a function that puts it back.
func SetReconnectDelay(d time.Duration) (restore func()) {
	old := reconnectDelayFunc
	reconnectDelayFunc = func(int) time.Duration { return d }
	return func() { reconnectDelayFunc = old }
}
