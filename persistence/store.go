package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/bus"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAge   = 720 * time.Hour // 30 days of audit trail
	DefaultMaxBytes = 1 << 30         // 1 GiB
)

// closeTimeout bounds the flush Close does before it stops the writer, so
// that a node whose NATS is gone still shuts down.
const closeTimeout = 5 * time.Second

// Config says where and how to keep Hive's state. Conn and Node are
// required; the other zero values are documented defaults.
type Config struct {
	// Conn is the node's NATS connection; the Store never closes it.
	Conn *nats.Conn
	// Subjects names the events the audit stream captures
	// (Subjects.Events()) and, through its prefix, the stream and bucket.
	Subjects bus.Subjects
	// Node is this node's id; its breaker snapshots are keyed by it.
	Node string
	// MaxAge drops audit events older than this; default DefaultMaxAge.
	MaxAge time.Duration
	// MaxBytes drops the oldest audit events beyond this size; default
	// DefaultMaxBytes.
	MaxBytes int64
	// Replicas is the number of copies of the stream and the bucket in a
	// JetStream cluster; default 1, at most 5.
	Replicas int
	// Logger receives write failures; the zero value logs nothing.
	Logger zerolog.Logger
	// Identities names each model's upstream (see actors.ModelSpec), kept
	// with its snapshot so that other nodes match it; a model without one
	// is stored without it, and no peer adopts its state.
	Identities map[string]string
	// LeaseTTL, when > 0, opens the trial-lease bucket (see Leases) with
	// that TTL; 0 opens none.
	LeaseTTL time.Duration
}

// withDefaults validates c and fills in its defaults. Errors match
// ErrInvalidConfig and name the field.
func (c Config) withDefaults() (Config, error) {
	if c.Conn == nil {
		return c, fmt.Errorf("%w: Conn is nil", ErrInvalidConfig)
	}
	if err := bus.ValidToken("node", c.Node); err != nil {
		return c, fmt.Errorf("%w: Node: %w", ErrInvalidConfig, err)
	}
	if c.MaxAge < 0 || c.MaxBytes < 0 || c.Replicas < 0 || c.Replicas > 5 {
		return c, fmt.Errorf("%w: MaxAge %s, MaxBytes %d, Replicas %d: want MaxAge >= 0, MaxBytes >= 0, 0 <= Replicas <= 5",
			ErrInvalidConfig, c.MaxAge, c.MaxBytes, c.Replicas)
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c, nil
}

// prefixed names a stream or bucket of a subject prefix: the prefix with
// its dots as underscores, then suffix, so that several Hive deployments
// can share one JetStream account.
func prefixed(s bus.Subjects, suffix string) string {
	return strings.ReplaceAll(s.Prefix(), ".", "_") + suffix
}

// StreamName is the audit stream of a subject prefix: HIVE_EVENTS for
// "hive", ACME_HIVE_EVENTS for "acme.hive", so that several Hive
// deployments can share one JetStream account.
func StreamName(s bus.Subjects) string {
	return strings.ToUpper(prefixed(s, "_EVENTS"))
}

// BucketName is the breaker-state bucket of a subject prefix:
// hive_breakers for "hive", acme_hive_breakers for "acme.hive".
func BucketName(s bus.Subjects) string {
	return prefixed(s, "_breakers")
}

// LeaseBucketName is the trial-lease bucket of a subject prefix:
// hive_probe_leases for "hive".
func LeaseBucketName(s bus.Subjects) string {
	return prefixed(s, "_probe_leases")
}

// Store is a node's handle on the audit stream and its breaker states.
// Open makes one; Close stops it. It is safe for concurrent use.
type Store struct {
	js       jetstream.JetStream
	stream   string
	breakers *BreakerStore
	kv       jetstream.KeyValue
	node     string
	log      zerolog.Logger
	leases   *Leases // nil without Config.LeaseTTL

	closeOnce sync.Once
	closeErr  error
}

// Open creates or updates the audit stream and the breaker bucket (several
// nodes may call it at once, and again at every restart: the last Config
// wins), reads this node's breaker snapshots into memory and starts the
// writer. When the deployment has no JetStream the error matches
// ErrUnavailable; the caller may run without persistence. Other errors are
// returned wrapped. The Store does not own cfg.Conn: Close the Store before
// the connection.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, wrap("jetstream", err)
	}
	s := &Store{js: js, stream: StreamName(cfg.Subjects)}
	if _, err := upsert(ctx, js.CreateOrUpdateStream, jetstream.StreamConfig{
		Name:        s.stream,
		Description: "Hive audit trail: every health, breaker, recovery, alert and admin event",
		Subjects:    []string{cfg.Subjects.Events()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Replicas:    cfg.Replicas,
	}); err != nil {
		return nil, wrap("audit stream "+s.stream, err)
	}
	bucket := BucketName(cfg.Subjects)
	kv, err := upsert(ctx, js.CreateOrUpdateKeyValue, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Hive breaker states: the last snapshot of each <node>.<model>",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, wrap("breaker bucket "+bucket, err)
	}
	cache, err := loadNode(ctx, kv, cfg.Node, cfg.Logger)
	if err != nil {
		return nil, wrap("load breaker states", err)
	}
	s.breakers = newBreakerStore(kv, cfg.Node, cache, cfg.Logger)
	s.breakers.identities = cfg.Identities
	s.kv, s.node, s.log = kv, cfg.Node, cfg.Logger
	if cfg.LeaseTTL > 0 {
		lb := LeaseBucketName(cfg.Subjects)
		lkv, err := upsert(ctx, js.CreateOrUpdateKeyValue, jetstream.KeyValueConfig{
			Bucket:      lb,
			Description: "Hive half-open trial leases: the node taking an upstream's trials",
			History:     1,
			TTL:         cfg.LeaseTTL,
			Storage:     jetstream.MemoryStorage,
			Replicas:    cfg.Replicas,
		})
		if err != nil {
			s.breakers.stop()
			return nil, wrap("lease bucket "+lb, err)
		}
		s.leases = newLeases(lkv, cfg.Node, cfg.LeaseTTL, cfg.Logger)
	}
	return s, nil
}

// Leases returns the trial leases; nil when Config.LeaseTTL was 0.
func (s *Store) Leases() *Leases { return s.leases }

// upsert calls create, and once more when another node created the same
// stream or bucket with other settings between its update and its create
// (CreateOrUpdate is two requests): the second call updates it.
func upsert[C, R any](ctx context.Context, create func(context.Context, C) (R, error), cfg C) (R, error) {
	r, err := create(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		r, err = create(ctx, cfg)
	}
	return r, err
}

// Breakers returns the breaker states of this Store's node (Config.Node).
// It satisfies actors.StateStore.
func (s *Store) Breakers() *BreakerStore { return s.breakers }

// Close writes every pending breaker snapshot (for at most 5 s) and stops
// the writer. It returns the flush error, if any; later calls return the
// same. Saves after Close stay in memory only.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		s.closeErr = s.breakers.Flush(ctx)
		s.breakers.stop()
		if s.leases != nil {
			s.leases.stop()
		}
	})
	return s.closeErr
}

// StreamInfo describes the audit stream, for `hive-node status`.
type StreamInfo struct {
	Stream      string
	Messages    uint64
	Bytes       uint64
	First, Last time.Time // when the oldest and newest events were stored; zero when empty
}

// Info returns the audit stream's size and time span. Errors match
// ErrUnavailable when JetStream cannot be reached.
func (s *Store) Info(ctx context.Context) (StreamInfo, error) {
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return StreamInfo{}, wrap("audit stream "+s.stream, err)
	}
	state := st.CachedInfo().State
	return StreamInfo{
		Stream:   s.stream,
		Messages: state.Msgs,
		Bytes:    state.Bytes,
		First:    state.FirstTime,
		Last:     state.LastTime,
	}, nil
}
