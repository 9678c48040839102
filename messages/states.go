package messages

// Refuses reports whether a breaker in state s turns traffic away: open
// and forced_open refuse every call, half_open all but its few trial
// calls; closed, disabled (forced closed) and metrics_only take traffic.
// The open_breakers alert and hive-node health-check both judge a breaker
// by it.
func (s BreakerState) Refuses() bool {
	switch s {
	case BreakerState_open, BreakerState_forced_open, BreakerState_half_open:
		return true
	}
	return false
}
