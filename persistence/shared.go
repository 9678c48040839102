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
// holding it loses it). While a node holds a lease it refreshes it every
// third of the TTL, by a compare-and-set on the revision it wrote last,
// so trials that outlive the TTL keep their one holder; a refresh that
// finds another revision (the key expired and another node took it)
// stops refreshing and logs that the lease was lost. It satisfies
// actors.Leases and is safe for concurrent use.
type Leases struct {
	kv   jetstream.KeyValue
	node string
	ttl  time.Duration
	log  zerolog.Logger

	mu   sync.Mutex       // guards held
	held map[string]*hold // held lease key -> its refresher

	ctx    context.Context // the refreshers' and releases'; cancelled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // refreshers and releases in flight
}

// hold is one held lease: the revision this node wrote last, and its
// refresher, which quit closes and which closes done when it has ended.
type hold struct {
	rev        uint64 // written by the refresher until done is closed
	quit, done chan struct{}
}

func newLeases(kv jetstream.KeyValue, node string, ttl time.Duration, log zerolog.Logger) *Leases {
	l := &Leases{kv: kv, node: node, ttl: ttl, log: log, held: make(map[string]*hold)}
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
// whether this node holds it now (a lease this node wrote before, say
// before a restart of the model's actor, is this node's again).
func (l *Leases) Acquire(ctx context.Context, identity string) (bool, error) {
	key := LeaseKey(identity)
	rev, err := l.kv.Create(ctx, key, []byte(l.node))
	if err == nil {
		l.keep(key, rev)
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
	if string(e.Value()) != l.node {
		return false, nil
	}
	l.keep(key, e.Revision())
	return true, nil
}

// keep starts refreshing key, written at rev, unless it is refreshed
// already.
func (l *Leases) keep(key string, rev uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key] != nil || l.ctx.Err() != nil {
		return
	}
	h := &hold{rev: rev, quit: make(chan struct{}), done: make(chan struct{})}
	l.held[key] = h
	l.wg.Add(1)
	go l.refresh(key, h)
}

// refresh rewrites key every third of the TTL while h is held, each write
// conditional on the revision of the one before.
func (l *Leases) refresh(key string, h *hold) {
	defer l.wg.Done()
	defer close(h.done)
	every := l.ttl / 3
	if every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-l.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(l.ctx, min(writeTimeout, every))
		rev, err := l.kv.Update(ctx, key, []byte(l.node), h.rev)
		cancel()
		switch {
		case err == nil:
			h.rev = rev
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			// Another revision: the key expired (this node could not
			// refresh it in time) and was deleted or taken.
			l.log.Warn().Str("lease", key).Msg("trial lease lost: it expired before its refresh; another node may take the trials")
			l.mu.Lock()
			if l.held[key] == h {
				delete(l.held, key)
			}
			l.mu.Unlock()
			return
		default:
			// Not written (NATS slow or away): the next tick tries again,
			// with the same revision, while the TTL lasts.
			l.log.Debug().Err(err).Str("lease", key).Msg("trial lease not refreshed; trying again")
		}
	}
}

// Release gives identity's lease back, in the background, if this node
// holds it: its refresher stops, then the key is deleted if it is still
// at the revision this node wrote last. A failed delete is logged, and
// the TTL frees the lease.
func (l *Leases) Release(identity string) {
	key := LeaseKey(identity)
	l.mu.Lock()
	h := l.held[key]
	delete(l.held, key)
	l.mu.Unlock()
	if h == nil {
		return
	}
	close(h.quit)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		<-h.done
		ctx, cancel := context.WithTimeout(l.ctx, writeTimeout)
		defer cancel()
		if err := l.kv.Delete(ctx, key, jetstream.LastRevision(h.rev)); err != nil {
			l.log.Warn().Err(err).Str("lease", key).Msg("trial lease not released; it expires with its TTL")
		}
	}()
}

// stop cancels the refreshers and releases in flight and waits for them:
// the leases still held expire with their TTL.
func (l *Leases) stop() {
	l.cancel()
	l.wg.Wait()
}
