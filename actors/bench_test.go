package actors

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
	"github.com/cmmv-hive/resilience/resilience"
)

// benchHive starts a Hive for a benchmark: "primary" with fallback
// "backup", both zero-latency sims; primaryDown makes the primary fail
// every call so its breaker is open for the whole run.
func benchHive(b *testing.B, primaryDown bool) *Hive {
	b.Helper()
	rate := 0.0
	if primaryDown {
		rate = 1
	}
	primary, err := sim.New(sim.Config{Name: "primary", FailureRate: rate})
	if err != nil {
		b.Fatal(err)
	}
	backup, err := sim.New(sim.Config{Name: "backup"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{
		Node:   "bench",
		Logger: zerolog.Nop(),
		Models: []ModelSpec{
			{Name: "primary", Provider: primary, MaxConcurrent: 1000, Fallbacks: []string{"backup"}, Retry: noRetry,
				Breaker: resilience.BreakerConfig{OpenDuration: time.Hour, MaxOpenDuration: time.Hour}},
			{Name: "backup", Provider: backup, MaxConcurrent: 1000, Retry: noRetry},
		},
		Recovery: Recovery{Disabled: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Stop)
	if primaryDown { // trip the breaker before measuring
		for range 10 {
			benchCall(b, h)
		}
	}
	return h
}

// benchCall sends one request and waits for its reply. It returns the
// caller's round trip and the overhead the Hive reports in the reply (from
// Dispatch to the reply, minus the time in the provider).
func benchCall(b *testing.B, h *Hive) (roundTrip, overhead time.Duration) {
	began := time.Now()
	done := make(chan *messages.InferResponse, 1)
	h.Dispatch(context.Background(), request("primary"), finalFunc(func(r *messages.InferResponse) { done <- r }))
	r := <-done
	if r.Error != nil {
		b.Fatal(r.Error)
	}
	return time.Since(began), time.Duration(r.OverheadUs) * time.Microsecond
}

// BenchmarkDispatch measures the actor path alone: router, model actor,
// provider goroutine (a sim with no latency) and back, with no NATS. It
// reports requests/s, the p50/p99 round trip a caller sees, and the p50/p99
// of the overhead the Hive itself reports in each reply (overheadUs: from
// Dispatch to the reply, minus the provider's time). With 64 closed-loop
// callers on 2 cores the round trip is mostly the callers queueing for a
// core (Little's law: 64 in flight at 170,000/s is 376 µs on average).
func BenchmarkDispatch(b *testing.B) {
	for _, tc := range []struct {
		name        string
		callers     int
		primaryDown bool
	}{
		{"serial", 1, false},
		{"callers64", 64, false},
		{"callers64/primary_down", 64, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := benchHive(b, tc.primaryDown)
			var mu sync.Mutex
			hist, over := &resilience.Histogram{}, &resilience.Histogram{}
			b.ResetTimer()
			began := time.Now()
			var wg sync.WaitGroup
			per := max(b.N/tc.callers, 1)
			for range tc.callers {
				wg.Go(func() {
					local, localOver := &resilience.Histogram{}, &resilience.Histogram{}
					for range per {
						rt, oh := benchCall(b, h)
						local.Record(rt)
						localOver.Record(oh)
					}
					mu.Lock()
					hist.Merge(local)
					over.Merge(localOver)
					mu.Unlock()
				})
			}
			wg.Wait()
			elapsed := time.Since(began)
			b.ReportMetric(float64(per*tc.callers)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(hist.Quantile(0.5).Microseconds()), "p50-µs")
			b.ReportMetric(float64(hist.Quantile(0.99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(over.Quantile(0.5).Microseconds()), "overhead-p50-µs")
			b.ReportMetric(float64(over.Quantile(0.99).Microseconds()), "overhead-p99-µs")
		})
	}
}

// BenchmarkIdleModels measures the memory of 1,000 idle model actors (the
// heap in use after a collection, beside the process's resident set).
func BenchmarkIdleModels(b *testing.B) {
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		specs := make([]ModelSpec, 1000)
		for i := range specs {
			p, err := sim.New(sim.Config{Name: fmt.Sprint("m", i)})
			if err != nil {
				b.Fatal(err)
			}
			specs[i] = ModelSpec{Name: fmt.Sprint("m", i), Provider: p}
		}
		h, err := New(Config{Node: "bench", Logger: zerolog.Nop(), Models: specs})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(after.Sys)/(1<<20), "sys-MiB")
		h.Stop()
	}
}

// counting wraps a provider and signals every call.
type counting struct {
	p     *sim.Model
	calls chan struct{}
}

func (c counting) Complete(ctx context.Context, req *messages.InferRequest) (*providers.Result, error) {
	res, err := c.p.Complete(ctx, req)
	c.calls <- struct{}{}
	return res, err
}

// BenchmarkProbe measures the node CPU one active health probe costs
// (timer, goroutine, sim call with no latency, health update), with
// probes back to back: the process's CPU time per probe.
func BenchmarkProbe(b *testing.B) {
	p, err := sim.New(sim.Config{Name: "probed"})
	if err != nil {
		b.Fatal(err)
	}
	c := counting{p: p, calls: make(chan struct{}, 1024)}
	h, err := New(Config{Node: "bench", Logger: zerolog.Nop(), Recovery: Recovery{Disabled: true},
		Models: []ModelSpec{{Name: "probed", Provider: c, ProbeInterval: time.Microsecond}}})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Stop()
	<-c.calls // probing has begun
	before := cpuTime()
	b.ResetTimer()
	for range b.N {
		<-c.calls
	}
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/probe")
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
