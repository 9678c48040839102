package bus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// server, connection, micro service and ingress must be stopped by the test
// that made it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
