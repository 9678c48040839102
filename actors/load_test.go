package actors

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

// 50 models under concurrent load: every request gets exactly one reply,
// and the models count exactly the attempts the replies report.
func TestFiftyModelsUnderConcurrentLoad(t *testing.T) {
	const models, workers, perWorker = 50, 16, 200
	specs := make([]ModelSpec, models)
	for i := range specs {
		name := fmt.Sprintf("m%02d", i)
		rate := 0.0
		if i%5 == 0 { // every fifth model fails a third of its calls
			rate = 0.3
		}
		p, err := sim.New(sim.Config{Name: name, FailureRate: rate, Seed: uint64(i + 1)})
		require.NoError(t, err)
		specs[i] = ModelSpec{
			Name: name, Kind: "sim", Provider: p,
			Fallbacks: []string{fmt.Sprintf("m%02d", (i+1)%models)},
			Retry:     resilience.RetryConfig{MaxRetries: 1, BaseDelay: time.Millisecond},
		}
	}
	// Recovery restarts the failing models when three calls fail in a row;
	// their counters survive (see TestStatusCountersSurviveRestart).
	h := startHiveWith(t, Config{Models: specs})

	replies := make([]atomic.Int32, workers*perWorker)
	var attempts, served, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range perWorker {
				id := w*perWorker + j
				ch := make(chan *messages.InferResponse, 2)
				h.Dispatch(context.Background(), request(fmt.Sprintf("m%02d", id%models)), finalFunc(func(r *messages.InferResponse) {
					replies[id].Add(1)
					ch <- r
				}))
				select {
				case r := <-ch:
					attempts.Add(int64(len(r.GetAttempts())))
					switch {
					case r.GetError() == nil && r.GetServedBy() != "":
						served.Add(1)
					case r.GetError() != nil:
						failed.Add(1)
					default:
						t.Errorf("request %d: reply with neither an answer nor an error", id)
					}
				case <-time.After(waitLimit):
					t.Errorf("request %d: no reply within %v", id, waitLimit)
					return
				}
			}
		})
	}
	wg.Wait()

	var counted int64
	for _, st := range h.Status() {
		counted += st.Requests
	}
	h.Stop()
	for id := range replies {
		if n := replies[id].Load(); n != 1 {
			t.Errorf("request %d: %d replies, want exactly 1", id, n)
		}
	}
	assert.Equal(t, int64(workers*perWorker), served.Load()+failed.Load(), "replies")
	assert.Equal(t, attempts.Load(), counted, "requests the models counted: got %d, want the %d attempts the replies report", counted, attempts.Load())
	t.Logf("%d requests: %d served, %d failed, %d attempts", workers*perWorker, served.Load(), failed.Load(), attempts.Load())
}
