package fault_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that nothing is left running: the wrapper starts no
// goroutine, and the actors of the panic test stop with their Hive.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}
