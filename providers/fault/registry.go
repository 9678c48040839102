package fault

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// Config configures a Registry. The zero value uses the wall clock and
// math/rand/v2.
type Config struct {
	// Now is the clock that opens and closes fault windows; time.Now when
	// nil.
	Now func() time.Time
	// Random draws probabilities and jitter, in [0, 1); math/rand/v2 when
	// nil. It is only called under the registry's lock, so a seeded
	// (*rand.Rand).Float64 makes a test repeatable.
	Random func() float64
}

// Registry holds the faults injected into one node. It is safe for
// concurrent use.
type Registry struct {
	now    func() time.Time
	random func() float64

	mu     sync.Mutex // guards faults, next and the calls to random
	faults []*entry   // in injection order, ids unique
	next   int        // the last assigned id number
}

// entry is one injected fault and its window.
type entry struct {
	spec  *messages.FaultSpec // a copy, never changed
	start time.Time
	end   time.Time // zero while it lasts until cleared
}

// NewRegistry returns an empty registry.
func NewRegistry(cfg Config) *Registry {
	r := &Registry{now: cfg.Now, random: cfg.Random}
	if r.now == nil {
		r.now = time.Now
	}
	if r.random == nil {
		r.random = rand.Float64
	}
	return r
}

// Now reads the registry's clock.
func (r *Registry) Now() time.Time { return r.now() }

// Inject adds a copy of spec, active from now plus start_after_ms for
// duration_ms (0: until cleared), and returns its id: spec's, or "f1",
// "f2" ... when spec has none. A fault with the id of an earlier one
// replaces it. Negative times count as 0 and a probability outside (0, 1]
// as 1: the node refuses such specs (Check) before they get here.
func (r *Registry) Inject(spec *messages.FaultSpec, now time.Time) string {
	s := proto.Clone(spec).(*messages.FaultSpec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.GetId() == "" {
		r.next++
		s.Id = "f" + strconv.Itoa(r.next)
	}
	e := &entry{spec: s, start: now.Add(millis(s.GetStartAfterMs()))}
	if d := millis(s.GetDurationMs()); d > 0 {
		e.end = e.start.Add(d)
	}
	r.remove(s.Id)
	r.faults = append(r.faults, e)
	return s.Id
}

// Clear removes the fault id and says whether there was one.
func (r *Registry) Clear(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remove(id)
}

// ClearAll removes every fault and returns how many there were.
func (r *Registry) ClearAll() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.faults)
	r.faults = nil
	return n
}

// Active returns the ids of the faults not yet over, in injection order:
// those in their window and those waiting for their start.
func (r *Registry) Active() []string {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	ids := make([]string, 0, len(r.faults))
	for _, e := range r.faults {
		ids = append(ids, e.spec.GetId())
	}
	return ids
}

// Get returns a copy of the fault id, and whether it is still there.
func (r *Registry) Get(id string) (*messages.FaultSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.faults {
		if e.spec.GetId() == id {
			return proto.Clone(e.spec).(*messages.FaultSpec), true
		}
	}
	return nil, false
}

// remove drops the fault id; r.mu is held.
func (r *Registry) remove(id string) bool {
	for i, e := range r.faults {
		if e.spec.GetId() == id {
			r.faults = append(r.faults[:i:i], r.faults[i+1:]...)
			return true
		}
	}
	return false
}

// prune drops the faults whose window has closed; r.mu is held.
func (r *Registry) prune(now time.Time) {
	kept := r.faults[:0]
	for _, e := range r.faults {
		if e.end.IsZero() || now.Before(e.end) {
			kept = append(kept, e)
		}
	}
	clear(r.faults[len(kept):])
	r.faults = kept
}

// plan is what the faults do to one call, drawn when it starts.
type plan struct {
	delay      time.Duration       // latency faults, summed: before the call
	firstToken time.Duration       // slow_first_token: before the first piece
	fail       *messages.FaultSpec // the first failing fault: replaces the call
	stream     *messages.FaultSpec // the first stream fault: acts on the answer
}

// none says the call runs untouched.
func (p plan) none() bool {
	return p.delay == 0 && p.firstToken == 0 && p.fail == nil && p.stream == nil
}

// plan draws the faults of one call of model at now.
func (r *Registry) plan(model string, now time.Time) plan {
	var p plan
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.faults) == 0 {
		return p
	}
	r.prune(now)
	for _, e := range r.faults {
		s := e.spec
		if now.Before(e.start) || !targets(s, model) || !r.draw(s.GetProbability()) {
			continue
		}
		switch s.GetKind() {
		case messages.FaultSpec_latency:
			p.delay += r.jittered(s)
		case messages.FaultSpec_slow_first_token:
			p.firstToken += r.jittered(s)
		case messages.FaultSpec_error, messages.FaultSpec_rate_limit, messages.FaultSpec_connection_reset,
			messages.FaultSpec_hang, messages.FaultSpec_panic:
			if p.fail == nil {
				p.fail = s
			}
		case messages.FaultSpec_cut_stream, messages.FaultSpec_stall_stream, messages.FaultSpec_malformed_chunk:
			if p.stream == nil {
				p.stream = s
			}
		}
	}
	return p
}

// targets says whether s applies to model.
func targets(s *messages.FaultSpec, model string) bool {
	m := s.GetModel()
	return m == "" || m == "*" || m == model
}

// draw says whether a call is affected by a fault of probability p (0 and
// anything at or above 1 mean always); r.mu is held.
func (r *Registry) draw(p float64) bool {
	if p <= 0 || p >= 1 {
		return true
	}
	return r.random() < p
}

// jittered is s's latency +- a uniform jitter, never negative; r.mu is held.
func (r *Registry) jittered(s *messages.FaultSpec) time.Duration {
	d := millis(s.GetLatencyMs())
	if j := millis(s.GetJitterMs()); j > 0 {
		d += time.Duration((2*r.random() - 1) * float64(j))
	}
	return max(d, 0)
}

// millis turns a wire millisecond count into a duration; negative is 0.
func millis(ms int32) time.Duration {
	return time.Duration(max(ms, 0)) * time.Millisecond
}
