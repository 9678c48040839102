package actors

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers/sim"
)

// BenchmarkDispatch measures the actor path alone: router, model actor,
// provider goroutine (a sim with no latency) and back, one request at a
// time and from many goroutines.
func BenchmarkDispatch(b *testing.B) {
	p, err := sim.New(sim.Config{Name: "instant"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{Node: "bench", Models: []ModelSpec{{Name: "instant", Provider: p, MaxConcurrent: 1000}}, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Stop)
	req := request("instant")
	one := func() {
		done := make(chan *messages.InferResponse, 1)
		h.Dispatch(context.Background(), req, func(r *messages.InferResponse) { done <- r })
		if r := <-done; r.Error != nil {
			b.Fatal(r.Error)
		}
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			one()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	})
}
