package gateway

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
)

const (
	// sampleInterval is how often the sampler asks the cluster for its
	// status while someone looks.
	sampleInterval = 2 * time.Second
	// historyWindow is how far back the charts go, and how long after the
	// last viewer the sampler keeps sampling (so a page opened again soon
	// after shows the minutes before it).
	historyWindow = 10 * time.Minute
	// statusTimeout bounds one Cluster.Status call.
	statusTimeout = 3 * time.Second
)

// samplePoint is one sample of one model: unix ms, then over the interval since
// the previous sample the requests, successes and failures, then the p50
// and p99 latency (ms) of the model's health window. A JSON array keeps
// ten minutes of 50 models small.
type samplePoint [6]float64

// clusterSample is one sample of the whole cluster, as the page receives it.
type clusterSample struct {
	SampledAt int64                  `json:"sampledAt"` // unix ms when the status request went out
	Nodes     []json.RawMessage      `json:"nodes"`     // NodeStatus (protojson) of every node seen within the window, by name
	Seen      map[string]int64       `json:"seen"`      // node → unix ms of its last answer
	Points    map[string]samplePoint `json:"points"`    // "node/model" → the point this sample added
	Error     string                 `json:"error,omitempty"`
}

// modelSeries is the history of one node and model.
type modelSeries struct {
	at                            time.Time // of the last status
	requests, successes, failures int64
	points                        []samplePoint
}

type seenNode struct {
	status json.RawMessage
	at     time.Time
}

// sampler polls Cluster.Status every interval while a page is open or was
// opened within the window, keeps each model's points over the window,
// and publishes every sample to the hub. One goroutine (run) samples; the
// handlers read under mu.
type sampler struct {
	cluster  Cluster
	hub      *eventHub
	interval time.Duration
	window   time.Duration
	log      zerolog.Logger
	wake     chan struct{} // a page was opened while idle

	mu       sync.Mutex // guards the fields below
	lastSeen time.Time  // of the last page or state request
	streams  int        // open event streams
	nodes    map[string]seenNode
	series   map[string]*modelSeries // by "node/model"
	latest   *clusterSample
	sampled  chan struct{} // closed after the next sample
}

func newSampler(c Cluster, h *eventHub, interval, window time.Duration, log zerolog.Logger) *sampler {
	return &sampler{
		cluster: c, hub: h, interval: interval, window: window, log: log,
		wake:    make(chan struct{}, 1),
		nodes:   make(map[string]seenNode),
		series:  make(map[string]*modelSeries),
		sampled: make(chan struct{}),
	}
}

// touch records that someone looks, waking the sampler when it was idle.
func (s *sampler) touch() {
	s.mu.Lock()
	s.lastSeen = time.Now()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sampler) streamOpened() {
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	s.touch()
}

func (s *sampler) streamClosed() {
	s.mu.Lock()
	s.streams--
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

func (s *sampler) active(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams > 0 || now.Sub(s.lastSeen) < s.window
}

// run samples until ctx ends, sleeping while nobody looks.
func (s *sampler) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if !s.active(time.Now()) {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		start := time.Now()
		s.sample(ctx, start)
		timer.Reset(s.interval - time.Since(start))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// sample asks the cluster once and records the answer.
func (s *sampler) sample(ctx context.Context, start time.Time) {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	statuses, err := s.cluster.Status(sctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	encoded := make(map[string]json.RawMessage, len(statuses))
	for _, st := range statuses {
		if b, err := pageJSON.Marshal(st); err == nil {
			encoded[st.GetNode()] = b
		}
	}
	snap := &clusterSample{SampledAt: start.UnixMilli(), Nodes: []json.RawMessage{}, Seen: make(map[string]int64),
		Points: make(map[string]samplePoint)}
	if err != nil {
		snap.Error = err.Error()
		s.log.Debug().Err(err).Msg("dashboard: cluster status")
	}

	s.mu.Lock()
	for _, st := range statuses {
		if b, ok := encoded[st.GetNode()]; ok {
			s.nodes[st.GetNode()] = seenNode{status: b, at: now}
		}
		for _, m := range st.GetModels() {
			key := st.GetNode() + "/" + m.GetName()
			if p, ok := s.record(key, now, m); ok {
				snap.Points[key] = p
			}
		}
	}
	s.trimLocked(now)
	names := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		snap.Nodes = append(snap.Nodes, s.nodes[name].status)
		snap.Seen[name] = s.nodes[name].at.UnixMilli()
	}
	s.latest = snap
	close(s.sampled)
	s.sampled = make(chan struct{})
	s.mu.Unlock()

	if data, err := json.Marshal(snap); err == nil {
		s.hub.publish("sample", data)
	}
}

// record adds m's counters to its series and returns the new point; none
// for the first status after a gap, which only sets the baseline.
func (s *sampler) record(key string, now time.Time, m *messages.ModelStatus) (samplePoint, bool) {
	sr := s.series[key]
	if sr == nil {
		sr = &modelSeries{}
		s.series[key] = sr
	}
	prev := *sr
	sr.at, sr.requests, sr.successes, sr.failures = now, m.GetRequests(), m.GetSuccesses(), m.GetFailures()
	if prev.at.IsZero() || now.Sub(prev.at) > 3*s.interval || sr.requests < prev.requests ||
		sr.successes < prev.successes || sr.failures < prev.failures { // a gap, or a restarted node
		return samplePoint{}, false
	}
	ev := m.GetEvidence()
	p := samplePoint{float64(now.UnixMilli()),
		float64(sr.requests - prev.requests), float64(sr.successes - prev.successes), float64(sr.failures - prev.failures),
		round2(ev.GetLatencyP50Ms()), round2(ev.GetLatencyP99Ms())}
	sr.points = append(sr.points, p)
	return p, true
}

// trimLocked forgets points, series and nodes older than the window.
func (s *sampler) trimLocked(now time.Time) {
	oldest := float64(now.Add(-s.window).UnixMilli())
	for key, sr := range s.series {
		i := 0
		for i < len(sr.points) && sr.points[i][0] < oldest {
			i++
		}
		if i > 0 {
			sr.points = slices.Clone(sr.points[i:]) // let the old array go
		}
		if now.Sub(sr.at) > s.window {
			delete(s.series, key)
		}
	}
	for name, n := range s.nodes {
		if now.Sub(n.at) > s.window {
			delete(s.nodes, name)
		}
	}
}

// latestSample returns the latest sample as the hub publishes it; nil
// before the first.
func (s *sampler) latestSample() []byte {
	s.mu.Lock()
	latest := s.latest // never changed once published
	s.mu.Unlock()
	if latest == nil {
		return nil
	}
	data, err := json.Marshal(latest)
	if err != nil {
		return nil
	}
	return data
}

// state returns the latest clusterSample and a copy of the history. When the
// latest clusterSample is missing or stale (the sampler was idle), it wakes the
// sampler and waits for the next one, until ctx or stop ends; then it
// returns what it has, possibly nil.
func (s *sampler) state(ctx, stop context.Context) (*clusterSample, map[string][]samplePoint) {
	s.touch()
	s.mu.Lock()
	for s.latest == nil || time.Since(time.UnixMilli(s.latest.SampledAt)) > 2*s.interval+statusTimeout {
		next := s.sampled
		s.mu.Unlock()
		select {
		case <-next:
		case <-ctx.Done():
		case <-stop.Done():
		}
		s.mu.Lock()
		if ctx.Err() != nil || stop.Err() != nil {
			break
		}
	}
	defer s.mu.Unlock()
	history := make(map[string][]samplePoint, len(s.series))
	for key, sr := range s.series {
		history[key] = append([]samplePoint{}, sr.points...) // [] rather than null for none
	}
	return s.latest, history
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
