package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/resilience"
)

// scripted fails the calls its pattern marks, and counts every call.
type scripted struct {
	calls, failures atomic.Int64
}

func (s *scripted) Complete(context.Context, *messages.InferRequest) (*providers.Result, error) {
	n := s.calls.Add(1)
	if (n*2654435761)%5 < 2 { // about 40 % failures, in a scattered pattern
		s.failures.Add(1)
		return nil, providers.Errorf(messages.ErrorClass_server_error, "scripted failure %d", n)
	}
	return &providers.Result{Content: "ok"}, nil
}

// docs/policy.md, breaker case 7: 10,000 mixed outcomes from 16 goroutines are
// counted exactly, and every transition is reported once, in order, under
// the race detector. The wrapper the breaker lives in is the model actor.
func TestBreakerUnderConcurrentOutcomes(t *testing.T) {
	const goroutines, perGoroutine = 16, 625 // 10,000 requests
	p := &scripted{}
	rec := newRecorder()
	h := startHiveWith(t, Config{
		Publisher: rec,
		Models: []ModelSpec{{
			Name: "m", Provider: p, MaxConcurrent: 64, QueueSize: 1000, Retry: noRetry,
			// A breaker that flips often: open after 3 failures in a row,
			// for 1 ms, closed again after 1 trial success.
			Breaker: resilience.BreakerConfig{ConsecutiveFailures: 3, OpenDuration: time.Millisecond, MaxOpenDuration: time.Millisecond,
				SuccessThreshold: 1, HalfOpenPermits: 2},
			Ramp: resilience.RampConfig{Steps: []int{100}},
		}},
		// Keep refused requests from being served in panic mode: every
		// reply below is the breaker's own verdict or the provider's.
		Group: resilience.GroupConfig{PanicRate: -1},
		// Recovery would restart the actor (model_unavailable after 3
		// failures) and so reset its counters; it has its own tests.
		Recovery: Recovery{Disabled: true},
	})

	var ok, failed, refused, skipped, other atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				resp := await(t, send(h, request("m")))
				switch resp.GetError().GetClass() {
				case messages.ErrorClass_ok:
					ok.Add(1)
				case messages.ErrorClass_server_error:
					failed.Add(1)
				case messages.ErrorClass_circuit_open:
					if resp.GetError().GetCode() == "all_unavailable" {
						skipped.Add(1) // the router knew the breaker was open
					} else {
						refused.Add(1) // the model actor's breaker refused it
					}
				default:
					other.Add(1)
					t.Errorf("unexpected reply %v", resp.GetError())
				}
			}
		})
	}
	wg.Wait()

	total := int64(goroutines * perGoroutine)
	assert.Equal(t, total, ok.Load()+failed.Load()+refused.Load()+skipped.Load(), "every request answered once")
	assert.Equal(t, p.calls.Load(), ok.Load()+failed.Load(), "provider calls = outcomes the callers saw")
	assert.Equal(t, p.failures.Load(), failed.Load(), "failures counted exactly")

	st, err := h.Control("m", OpStatus, 0, "", "")
	require.NoError(t, err)
	assert.Equal(t, total-skipped.Load(), st.Requests, "the actor counted every request it was sent")
	assert.Equal(t, ok.Load(), st.Successes, "successes")
	assert.Equal(t, failed.Load(), st.Failures, "failures")

	ts := rec.breakers("m")
	require.NotEmpty(t, ts, "a breaker that trips at 3 failures in a row must have moved")
	for i := 1; i < len(ts); i++ {
		prev, cur := ts[i-1], ts[i]
		if cur.Generation <= prev.Generation {
			t.Fatalf("transition %d: generation %d after %d: reported twice or out of order", i, cur.Generation, prev.Generation)
		}
		if cur.From != prev.To {
			t.Fatalf("transition %d: %v -> %v follows one that ended in %v", i, cur.From, cur.To, prev.To)
		}
	}
	t.Logf("%d requests: %d ok, %d failed, %d refused by the breaker, %d not sent (breaker known open), %d transitions",
		total, ok.Load(), failed.Load(), refused.Load(), skipped.Load(), len(ts))
}
