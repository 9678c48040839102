package messages

import (
	"math"
	"time"
)

// Millis converts d to the int32 milliseconds the wire uses, clamped to the
// int32 range (about 24 days) and to zero below.
func Millis(d time.Duration) int32 { return clamp32(d.Milliseconds()) }

// Micros converts d to int32 microseconds (about 35 minutes at most),
// clamped like Millis.
func Micros(d time.Duration) int32 { return clamp32(d.Microseconds()) }

// Duration converts wire milliseconds back to a time.Duration.
func Duration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func clamp32(v int64) int32 {
	switch {
	case v < 0:
		return 0
	case v > math.MaxInt32:
		return math.MaxInt32
	}
	return int32(v)
}
