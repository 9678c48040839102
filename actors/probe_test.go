package actors

import (
	"testing"
	"time"
)

// A probe runs under a context its model actor cancels when it stops: a
// hanging probe ends with the node, not at its own timeout.
func TestStopCancelsAHangingProbe(t *testing.T) {
	hang := newCancelWatch()
	h := startHiveWith(t, Config{
		Recovery: Recovery{Disabled: true},
		Models: []ModelSpec{{Name: "m", Provider: hang, Retry: noRetry,
			ProbeInterval: time.Millisecond, ProbeTimeout: time.Hour}},
	})
	signalled(t, hang.entered, "the probe calls the model")
	h.Stop()
	signalled(t, hang.cancelled, "the probe's call is cancelled by Stop")
}
