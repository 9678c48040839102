package persistence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/messages"
)

// Peers reads the breaker bucket for what the other nodes know: each
// other node's open breaker whose period has not ended at now and whose
// opening is its own (not adopted from a third node), as a
// BreakerTransition (reason restored) that actors.Hive.Adopt takes as it
// takes the bus's. A joining node reads it before it takes traffic, so it
// sends no first burst to a model the others know is dead. Values that do
// not decode are skipped.
func (s *Store) Peers(ctx context.Context, now time.Time) ([]*messages.BreakerTransition, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, wrap("read shared breaker states", err)
	}
	defer func() { _ = w.Stop() }()
	var out []*messages.BreakerTransition
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // every current value has been delivered
				return out, nil
			}
			node, model, ok := strings.Cut(e.Key(), ".")
			if !ok || node == s.node {
				continue
			}
			snap, identity, err := decodeShared(e.Value())
			if err != nil || identity == "" || snap.State != messages.BreakerState_open ||
				!snap.OpenUntil.After(now) || snap.Origin != node {
				continue
			}
			out = append(out, &messages.BreakerTransition{
				Time: timestamppb.New(now), Node: node, Model: model,
				From: messages.BreakerState_closed, To: messages.BreakerState_open,
				Reason: messages.BreakerTransition_restored, Generation: uint32(snap.Generation),
				OpenUntil: timestamppb.New(snap.OpenUntil), Trips: int32(snap.Trips),
				Class: snap.Class, Identity: identity, Origin: node,
			})
		case <-ctx.Done():
			return nil, wrap("read shared breaker states", ctx.Err())
		}
	}
}

// Leases grants one node at a time the half-open trials of an upstream:
// a key per identity in the lease bucket, created only when absent, which
// the bucket's TTL removes when its holder does not (a node that died
// holding it loses it). It satisfies actors.Leases and is safe for
// concurrent use.
type Leases struct {
	kv   jetstream.KeyValue
	node string
	log  zerolog.Logger

	mu   sync.Mutex        // guards revs
	revs map[string]uint64 // held lease key -> its revision, for a Release that deletes only our own

	ctx    context.Context // the releases'; cancelled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // releases in flight
}

func newLeases(kv jetstream.KeyValue, node string, log zerolog.Logger) *Leases {
	l := &Leases{kv: kv, node: node, log: log, revs: make(map[string]uint64)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// LeaseKey is the key of identity's lease: "trial.<sha256 prefix>", since
// an identity (an URL, a command line) may hold characters a key cannot.
func LeaseKey(identity string) string {
	h := sha256.Sum256([]byte(identity))
	return "trial." + hex.EncodeToString(h[:12])
}

// Acquire takes identity's lease when nobody holds it, and reports
// whether this node holds it now.
func (l *Leases) Acquire(ctx context.Context, identity string) (bool, error) {
	key := LeaseKey(identity)
	rev, err := l.kv.Create(ctx, key, []byte(l.node))
	if err == nil {
		l.mu.Lock()
		l.revs[key] = rev
		l.mu.Unlock()
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("lease %s: %w", key, err)
	}
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil // released meanwhile: the next ask may win it
	case err != nil:
		return false, fmt.Errorf("lease %s: %w", key, err)
	}
	return string(e.Value()) == l.node, nil
}

// Release gives identity's lease back, in the background, if this node
// holds it; a failed delete is logged, and the TTL frees the lease.
func (l *Leases) Release(identity string) {
	key := LeaseKey(identity)
	l.mu.Lock()
	rev, ok := l.revs[key]
	delete(l.revs, key)
	l.mu.Unlock()
	if !ok {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		ctx, cancel := context.WithTimeout(l.ctx, writeTimeout)
		defer cancel()
		if err := l.kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
			l.log.Warn().Err(err).Str("lease", key).Msg("trial lease not released; it expires with its TTL")
		}
	}()
}

// stop cancels the releases in flight and waits for them.
func (l *Leases) stop() {
	l.cancel()
	l.wg.Wait()
}
