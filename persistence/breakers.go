package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// writeTimeout bounds one snapshot write, so a stuck NATS cannot hold the
// writer (and with it Flush and Close) forever.
const writeTimeout = 5 * time.Second

// BreakerStore keeps one node's breaker snapshots in the bucket under keys
// "<node>.<model>". It satisfies actors.StateStore: Load and Save only
// touch memory; one goroutine owned by the Store writes the saves in order,
// coalescing several saves of one model into its latest. A failed write is
// logged (Warn) and retried with the next Save or Flush.
type BreakerStore struct {
	kv         jetstream.KeyValue
	node       string
	log        zerolog.Logger
	identities map[string]string // model -> upstream identity; read-only after Open

	mu      sync.Mutex // guards cache and pending
	cache   map[string]resilience.BreakerSnapshot
	pending queue

	wake   chan struct{}   // a Save happened; capacity 1, so Save never waits
	flush  chan chan error // Flush asks the writer to write everything now
	ctx    context.Context // the writer's; cancelled by stop, which cuts a write short
	cancel context.CancelFunc
	done   chan struct{} // closed when the writer has returned
}

func newBreakerStore(kv jetstream.KeyValue, node string, cache map[string]resilience.BreakerSnapshot, log zerolog.Logger) *BreakerStore {
	b := &BreakerStore{
		kv: kv, node: node, log: log, cache: cache,
		wake:  make(chan struct{}, 1),
		flush: make(chan chan error),
		done:  make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.run()
	return b
}

// Load returns the model's last snapshot: the latest Save, or what the
// bucket held when the Store was opened. It never blocks on the network.
func (b *BreakerStore) Load(model string) (resilience.BreakerSnapshot, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	snap, ok := b.cache[model]
	return snap, ok
}

// Save keeps snap as the model's state and queues it for writing. It never
// blocks on the network.
func (b *BreakerStore) Save(model string, snap resilience.BreakerSnapshot) {
	b.mu.Lock()
	b.cache[model] = snap
	b.pending.put(model, snap)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // the writer is already due to run
	}
}

// Flush waits until every Save made before it is written, and returns the
// first write error (those snapshots stay queued), or ctx's error when ctx
// ends first, or an error once the Store is closed.
func (b *BreakerStore) Flush(ctx context.Context) error {
	reply := make(chan error, 1) // buffered: the writer never waits for a Flush that gave up
	select {
	case b.flush <- reply:
	case <-b.done:
		return errors.New("flush breaker states: store closed")
	case <-ctx.Done():
		return fmt.Errorf("flush breaker states: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flush breaker states: %w", ctx.Err())
	}
}

// stop ends the writer and waits for it. A write in progress is cut short.
func (b *BreakerStore) stop() {
	b.cancel()
	<-b.done
}

// run is the writer: the only goroutine that writes to the bucket, so
// writes happen in the order of the saves.
func (b *BreakerStore) run() {
	defer close(b.done)
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
			if err := b.writePending(b.ctx); err != nil {
				b.log.Warn().Err(err).Str("node", b.node).Msg("breaker state not saved; retrying with the next save")
			}
		case reply := <-b.flush:
			reply <- b.writePending(b.ctx)
		}
	}
}

// writePending writes what is queued, oldest first. A snapshot that fails
// goes back in the queue unless a newer one was saved meanwhile; it is not
// retried at once, so a NATS outage does not make the writer spin.
func (b *BreakerStore) writePending(ctx context.Context) error {
	b.mu.Lock()
	batch := b.pending.take()
	b.mu.Unlock()
	var first error
	for i, w := range batch {
		err := b.write(ctx, w.model, w.snap)
		if err == nil {
			continue
		}
		first = fmt.Errorf("save breaker state %s.%s: %w", b.node, w.model, err)
		b.mu.Lock()
		for _, rest := range batch[i:] {
			b.pending.putBack(rest.model, rest.snap)
		}
		b.mu.Unlock()
		break // the next ones would most likely fail the same way
	}
	return first
}

func (b *BreakerStore) write(ctx context.Context, model string, snap resilience.BreakerSnapshot) error {
	body, err := encodeSnapshot(snap, b.identities[model])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	_, err = b.kv.Put(ctx, b.node+"."+model, body)
	return err
}

// loadNode reads every snapshot of node from the bucket. A value that does
// not decode is logged and left out: the model then starts closed, as it
// would without persistence.
func loadNode(ctx context.Context, kv jetstream.KeyValue, node string, log zerolog.Logger) (map[string]resilience.BreakerSnapshot, error) {
	w, err := kv.Watch(ctx, node+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	cache := make(map[string]resilience.BreakerSnapshot)
	prefix := node + "."
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // every current value has been delivered
				return cache, nil
			}
			model := e.Key()[len(prefix):]
			snap, err := decodeSnapshot(e.Value())
			if err != nil {
				log.Warn().Err(err).Str("node", node).Str("model", model).Msg("breaker state ignored")
				continue
			}
			cache[model] = snap
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// snapshotJSON is the stored form of a BreakerSnapshot: JSON with the state
// by name, so `nats kv get hive_breakers <node>.<model>` reads plainly.
// Class, origin and identity let a joining node adopt another node's
// opening (see Store.Peers).
type snapshotJSON struct {
	State      string    `json:"state"`
	Generation uint64    `json:"generation"`
	Trips      int       `json:"trips"`
	OpenUntil  time.Time `json:"openUntil,omitzero"`
	Class      string    `json:"class,omitempty"`
	Origin     string    `json:"origin,omitempty"`
	Identity   string    `json:"identity,omitempty"`
}

func encodeSnapshot(s resilience.BreakerSnapshot, identity string) ([]byte, error) {
	j := snapshotJSON{State: s.State.String(), Generation: s.Generation, Trips: s.Trips, OpenUntil: s.OpenUntil,
		Origin: s.Origin, Identity: identity}
	if s.Class != messages.ErrorClass_ok {
		j.Class = s.Class.String()
	}
	return json.Marshal(j)
}

// decodeSnapshot reads a stored snapshot. A state name it does not know
// (written by a newer version) restores as half-open, which lets trial
// calls decide instead of reopening all traffic.
func decodeSnapshot(b []byte) (resilience.BreakerSnapshot, error) {
	s, _, err := decodeShared(b)
	return s, err
}

// decodeShared reads a stored snapshot and the identity stored with it.
// An unknown class reads as ok.
func decodeShared(b []byte) (resilience.BreakerSnapshot, string, error) {
	var j snapshotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return resilience.BreakerSnapshot{}, "", fmt.Errorf("decode breaker state: %w", err)
	}
	state, ok := messages.BreakerState_value[j.State]
	if !ok {
		state = int32(messages.BreakerState_half_open)
	}
	return resilience.BreakerSnapshot{
		State: messages.BreakerState(state), Generation: j.Generation, Trips: j.Trips, OpenUntil: j.OpenUntil,
		Class: messages.ErrorClass(messages.ErrorClass_value[j.Class]), Origin: j.Origin,
	}, j.Identity, nil
}

// queue holds the snapshots waiting to be written: one per model, the
// latest, in the order the models were first saved since the last write.
type queue struct {
	order []string
	snaps map[string]resilience.BreakerSnapshot
}

type write struct {
	model string
	snap  resilience.BreakerSnapshot
}

// put queues snap as the model's latest.
func (q *queue) put(model string, snap resilience.BreakerSnapshot) {
	if q.snaps == nil {
		q.snaps = make(map[string]resilience.BreakerSnapshot)
	}
	if _, ok := q.snaps[model]; !ok {
		q.order = append(q.order, model)
	}
	q.snaps[model] = snap
}

// putBack requeues a snapshot that failed to write, unless a newer one was
// saved meanwhile.
func (q *queue) putBack(model string, snap resilience.BreakerSnapshot) {
	if _, ok := q.snaps[model]; !ok {
		q.put(model, snap)
	}
}

// take empties the queue and returns its writes in order.
func (q *queue) take() []write {
	ws := make([]write, 0, len(q.order))
	for _, m := range q.order {
		ws = append(ws, write{model: m, snap: q.snaps[m]})
	}
	q.order, q.snaps = nil, nil
	return ws
}
