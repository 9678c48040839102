package actors

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// longOpen opens after 2 failures, for an hour: longer than any test.
var longOpen = resilience.BreakerConfig{ConsecutiveFailures: 2, OpenDuration: time.Hour}

// isRestored matches m's restore transition (published when an actor
// starts from a stored snapshot).
func isRestored(model string) func(any) bool {
	return func(ev any) bool {
		b, ok := ev.(*messages.BreakerTransition)
		return ok && b.Model == model && b.Reason == messages.BreakerTransition_restored
	}
}

// An open breaker stays open through a crash and restart of its actor: the
// new incarnation restores it from the store, so no traffic reaches the
// failing model.
func TestBreakerSurvivesActorRestart(t *testing.T) {
	p := newSwitchable(answerFail)
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher:   rec,
		Recovery:    Recovery{Disabled: true},
		Supervision: Supervision{BaseDelay: time.Millisecond, Jitter: -1},
		// With every member open, the group's panic trickle lets one request
		// an hour reach the least-bad model past its breaker: the request that
		// crashes it. No other request may pass.
		Group:  resilience.GroupConfig{PanicRate: 1.0 / 3600},
		Models: []ModelSpec{{Name: "m", Provider: p, Breaker: longOpen, Retry: noRetry}},
	})
	for i := range 2 {
		assert.Equal(t, messages.ErrorClass_server_error, infer(t, h, "m").GetError().GetClass(), "failing request %d", i+1)
	}
	opened := rec.breakerTo(t, "m", messages.BreakerState_open)

	p.mode.Store(answerPanic)
	resp := infer(t, h, "m")
	require.Equal(t, []string{"m=server_error"}, classes(resp.GetAttempts()), "the panic-mode request that crashes m")
	rec.recoveryOf(t, "m", messages.RecoveryEvent_restart)

	restored := rec.waitFor(t, "m restored", isRestored("m")).(*messages.BreakerTransition)
	assert.Equal(t, messages.BreakerState_open, restored.To, "restored state")
	assert.True(t, restored.GetOpenUntil().AsTime().Equal(opened.GetOpenUntil().AsTime()),
		"restored open until %v, want the original %v", restored.GetOpenUntil().AsTime(), opened.GetOpenUntil().AsTime())
	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_open, st.Breaker, "breaker after the restart")

	p.mode.Store(answerOK)
	before := p.calls.Load()
	resp = infer(t, h, "m")
	assert.Equal(t, messages.ErrorClass_circuit_open, resp.GetError().GetClass(), "reply after the restart: %v", resp.GetError())
	assert.Equal(t, "all_unavailable", resp.GetError().GetCode(), "code")
	assert.Empty(t, resp.GetAttempts(), "attempts")
	assert.Equal(t, before, p.calls.Load(), "provider calls after the restart")
}

// A new Hive on the same store starts with the breakers the old one left:
// an open model stays out of rotation across a node restart.
func TestBreakerSurvivesNewHiveWithSameStore(t *testing.T) {
	store := NewMemoryStore()
	failing := newSwitchable(answerFail)
	first := startHiveWith(t, Config{
		Store: store,
		Models: []ModelSpec{
			{Name: "m", Provider: failing, Breaker: longOpen, Fallbacks: []string{"backup"}, Retry: noRetry},
			simModel(t, "backup", 0, messages.ErrorClass_ok),
		},
	})
	for i := range 2 {
		resp := infer(t, first, "m")
		require.Equal(t, []string{"m=server_error", "backup=ok"}, classes(resp.GetAttempts()), "failing request %d", i+1)
	}
	st, err := first.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	require.Equal(t, messages.BreakerState_open, st.Breaker, "breaker before the node stops")
	first.Stop()

	healed := newSwitchable(answerOK)
	rec := newRecorder()
	second := startHiveWith(t, Config{
		Store:     store,
		Publisher: rec,
		Models: []ModelSpec{
			{Name: "m", Provider: healed, Breaker: longOpen, Fallbacks: []string{"backup"}, Retry: noRetry},
			simModel(t, "backup", 0, messages.ErrorClass_ok),
		},
	})
	restored := rec.waitFor(t, "m restored", isRestored("m")).(*messages.BreakerTransition)
	assert.Equal(t, messages.BreakerState_open, restored.To, "restored state")
	st, err = second.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_open, st.Breaker, "breaker in the new node")

	resp := infer(t, second, "m")
	assert.Equal(t, "backup", resp.GetServedBy(), "served_by")
	assert.Equal(t, []string{"backup=ok"}, classes(resp.GetAttempts()), "attempts: m is not tried")
	assert.Zero(t, healed.calls.Load(), "calls to m in the new node")
}

// sequence answers its calls from a script: "fail" or "panic".
type sequence struct {
	mu    sync.Mutex
	steps []string
}

func (s *sequence) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	s.mu.Lock()
	step := s.steps[0]
	s.steps = s.steps[1:]
	s.mu.Unlock()
	if step == "panic" {
		panic("provider bug")
	}
	return nil, providers.Errorf(messages.ErrorClass_server_error, "down")
}

// The failures a breaker counted before its actor restarted still count
// after: a restart (here a crash) must not delay the opening (found by the
// network-timeout chaos scenario, where recovery's restart did).
func TestBreakerEvidenceSurvivesActorRestart(t *testing.T) {
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Recovery:  Recovery{Disabled: true},
		Models: []ModelSpec{{Name: "m", Provider: &sequence{steps: []string{"fail", "panic", "fail"}}, Retry: noRetry,
			Breaker: resilience.BreakerConfig{ConsecutiveFailures: 3, OpenDuration: time.Hour, MaxOpenDuration: time.Hour}}},
	})
	infer(t, h, "m") // failure 1
	infer(t, h, "m") // failure 2: the crash
	restored := rec.waitFor(t, "the new incarnation", isRestored("m")).(*messages.BreakerTransition)
	assert.Equal(t, int32(2), restored.GetEvidence().GetConsecutiveFailures(), "the restart reports the evidence it kept")
	// Answered by the new incarnation, which told the router it is up first.
	_, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	resp := infer(t, h, "m") // failure 3
	assert.Equal(t, []string{"m=server_error"}, classes(resp.GetAttempts()))
	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, messages.BreakerState_open, st.GetBreaker(), "three failures in a row, across the restart")
}
