package fault_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/fault"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

const waitLimit = 10 * time.Second

// recoveries is a Publisher that passes on recovery events.
type recoveries struct{ ch chan *messages.RecoveryEvent }

func (recoveries) Breaker(*messages.BreakerTransition) {}
func (recoveries) Health(*messages.HealthChanged)      {}
func (recoveries) Alert(*messages.Alert)               {}
func (r recoveries) Recovery(ev *messages.RecoveryEvent) {
	select {
	case r.ch <- ev:
	default:
	}
}

func model(t *testing.T, name string, reg *fault.Registry, fallbacks ...string) actors.ModelSpec {
	t.Helper()
	newProvider := func() (providers.Provider, error) {
		p, err := sim.New(sim.Config{Name: name, Reply: name + " here"})
		return fault.Wrap(name, p, reg), err
	}
	p, err := newProvider()
	require.NoError(t, err)
	return actors.ModelSpec{Name: name, Kind: "sim", Provider: p, NewProvider: newProvider, Fallbacks: fallbacks,
		Retry: resilience.RetryConfig{MaxRetries: -1}}
}

func infer(t *testing.T, h *actors.Hive, stream bool) *messages.InferResponse {
	t.Helper()
	req := &messages.InferRequest{Model: "primary", Stream: stream, Messages: []*messages.ChatMessage{{Role: "user", Content: "hi"}}}
	ch := make(finalOf, 1)
	h.Dispatch(context.Background(), req, ch)
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no answer within %v: a panic fault must never hang a caller", waitLimit)
		return nil
	}
}

// finalOf is a Sink that passes on the final reply; a stream's pieces are
// dropped.
type finalOf chan *messages.InferResponse

func (finalOf) Piece(string, string)              {}
func (f finalOf) Final(r *messages.InferResponse) { f <- r }

// TestPanicRestartsTheModelActor: a panic fault crashes the provider call;
// the model actor answers its caller (here the fallback serves), the
// supervisor restarts it with a fresh, still wrapped, provider, and once
// the fault is cleared the model serves again.
func TestPanicRestartsTheModelActor(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			reg := fault.NewRegistry(fault.Config{})
			pub := recoveries{ch: make(chan *messages.RecoveryEvent, 16)}
			h, err := actors.New(actors.Config{
				Node:        "n",
				Models:      []actors.ModelSpec{model(t, "primary", reg, "backup"), model(t, "backup", nil)},
				Publisher:   pub,
				Supervision: actors.Supervision{BaseDelay: 10 * time.Millisecond, Jitter: -1},
				Recovery:    actors.Recovery{Disabled: true},
				Logger:      zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.Disabled),
			})
			require.NoError(t, err)
			t.Cleanup(h.Stop)
			require.Equal(t, "primary", infer(t, h, stream).GetServedBy())

			reg.Inject(&messages.FaultSpec{Id: "boom", Model: "primary", Kind: messages.FaultSpec_panic}, time.Now())
			resp := infer(t, h, stream)
			assert.Nil(t, resp.GetError(), "the fallback answers")
			assert.Equal(t, "backup", resp.GetServedBy())

			select {
			case ev := <-pub.ch:
				assert.Equal(t, messages.RecoveryEvent_restart, ev.GetKind())
				assert.Equal(t, "primary", ev.GetModel())
				assert.Contains(t, ev.GetDetail(), "injected fault boom")
			case <-time.After(waitLimit):
				t.Fatal("no restart event")
			}

			reg.Clear("boom")
			require.Eventually(t, func() bool { return infer(t, h, stream).GetServedBy() == "primary" },
				waitLimit, 10*time.Millisecond, "the restarted model serves again")
		})
	}
}
