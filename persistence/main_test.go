package persistence_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// Store, audit read, connection and server must be stopped by its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
