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
func (n *Node) openPersistence(ctx context.Context, p config.Persistence, subjects bus.Subjects) error {
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
