package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/persistence"
)

// persistOpenTimeout bounds creating the stream and bucket at start.
const persistOpenTimeout = 10 * time.Second

// openPersistence opens the audit stream and the breaker bucket, within
// ctx and persistOpenTimeout. Without JetStream (or with persistence off)
// the node runs on without them and says so; any other failure stops the
// start.
func (n *Node) openPersistence(ctx context.Context, p config.Persistence, c config.Cluster, subjects bus.Subjects, identities map[string]string) error {
	if !p.Enabled {
		n.persistenceDetail = "off in resilience.yml"
		n.log.Warn().Msg("persistence is off (persistence.enabled: false): no audit trail, breaker states kept in memory only")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, persistOpenTimeout)
	defer cancel()
	store, err := persistence.Open(ctx, persistence.Config{
		Conn:     n.nc,
		Subjects: subjects,
		Node:     n.cfg.ID,
		MaxAge:   p.AuditMaxAge,
		MaxBytes: int64(p.AuditMaxMB) << 20,
		Replicas: p.Replicas,
		Logger:   n.log,

		Identities: identities,
		LeaseTTL:   leaseTTL(c),
	})
	if errors.Is(err, persistence.ErrUnavailable) {
		n.persistenceDetail = "JetStream unavailable: " + err.Error()
		n.log.Warn().Err(err).Msg("running without persistence: no audit trail, breaker states kept in memory only")
		return nil
	}
	if err != nil {
		return fmt.Errorf("persistence: %w", err)
	}
	n.store = store
	n.persistenceDetail = fmt.Sprintf("audit stream up to %s and %d MiB, breaker states in JetStream", p.AuditMaxAge, p.AuditMaxMB)
	n.log.Info().Str("stream", persistence.StreamName(subjects)).Str("bucket", persistence.BucketName(subjects)).
		Msg("persistence on: " + n.persistenceDetail)
	return nil
}

// leaseTTL is the trial-lease bucket's TTL; 0 (no bucket) when probe
// leases are off.
func leaseTTL(c config.Cluster) time.Duration {
	if !c.ProbeLease || !c.ShareBreakers {
		return 0
	}
	return c.LeaseTTL
}

// adoptShared hands the actors what the other nodes know (their open
// breakers, from the bucket) before the node takes traffic, and again
// after each reconnect (see resyncOnReconnect), and says how this node
// will share with them.
func (n *Node) adoptShared(ctx context.Context, c config.Cluster) {
	switch {
	case !c.ShareBreakers:
		n.log.Warn().Msg("cluster.shareBreakers is off: this node ignores other nodes' breaker openings and probes on its own")
		return
	case n.store == nil:
		n.log.Warn().Msg("no JetStream: this node adopts other nodes' breaker openings from the bus but reads no shared state at start, and takes its own half-open trials (no trial lease)")
		return
	case n.store.Leases() == nil:
		n.log.Info().Msg("cluster.probeLease is off: every node takes its own half-open trials")
	}
	ctx, cancel := context.WithTimeout(ctx, persistOpenTimeout)
	defer cancel()
	count, err := n.readShared(ctx)
	if err != nil {
		n.log.Warn().Err(err).Msg("shared breaker states not read: starting from this node's own")
		return
	}
	if count > 0 {
		n.log.Info().Int("open", count).Msg("read the other nodes' open breakers before taking traffic")
	}
	n.resyncOnReconnect()
}

// readShared hands the actors the other nodes' open breakers from the
// bucket, and returns how many there were.
func (n *Node) readShared(ctx context.Context) (int, error) {
	peers, err := n.store.Peers(ctx, time.Now())
	if err != nil {
		return 0, err
	}
	n.hive.Adopt(peers)
	return len(peers), nil
}
