package actors

import (
	"context"
	"sync"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// Publisher sends events to whoever listens (NATS in a node). Its methods
// are called from actors, so they must not block: an implementation
// publishes asynchronously or into a buffer. The actors never reuse an
// event after passing it.
type Publisher interface {
	Breaker(*messages.BreakerTransition)
	Health(*messages.HealthChanged)
	Recovery(*messages.RecoveryEvent)
	Alert(*messages.Alert)
}

// StateStore keeps each model's last breaker snapshot, so that a restarted
// actor or node never reopens traffic to a failing model. Load is called
// when a model actor starts and Save on every transition; neither may
// block: an implementation backed by a remote store reads a local cache and
// writes in the background.
type StateStore interface {
	Load(model string) (resilience.BreakerSnapshot, bool)
	Save(model string, s resilience.BreakerSnapshot)
}

// Leases grants one node at a time the half-open trials of an upstream,
// named by its identity (see ModelSpec.Identity). Acquire may block on the
// network: model actors call it from a goroutine under a context they
// cancel. It reports whether this node holds the lease now (it already
// did, or took it); an error means the lease could not be asked for, and
// the model then probes on its own. Release gives the lease back after the
// trials decided; it must not block.
type Leases interface {
	Acquire(ctx context.Context, identity string) (bool, error)
	Release(identity string)
}

// nopPublisher drops every event; the default when none is configured.
type nopPublisher struct{}

func (nopPublisher) Breaker(*messages.BreakerTransition) {}
func (nopPublisher) Health(*messages.HealthChanged)      {}
func (nopPublisher) Recovery(*messages.RecoveryEvent)    {}
func (nopPublisher) Alert(*messages.Alert)               {}

// MemoryStore is a StateStore in memory: breaker state survives an actor
// restart but not the process. It is the default when no store is
// configured. It stands for an external bucket shared by every model
// actor, so, unlike actor state, it needs its own lock.
type MemoryStore struct {
	mu    sync.Mutex // guards state
	state map[string]resilience.BreakerSnapshot
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{state: make(map[string]resilience.BreakerSnapshot)}
}

// Load returns the model's last snapshot.
func (s *MemoryStore) Load(model string) (resilience.BreakerSnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.state[model]
	return snap, ok
}

// Save keeps the model's snapshot.
func (s *MemoryStore) Save(model string, snap resilience.BreakerSnapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state[model] = snap
}
