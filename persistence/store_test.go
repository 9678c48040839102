package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// TestOpenIdempotent: nodes open the same stream and bucket at once and
// at every restart; a later Open with other limits updates them.
func TestOpenIdempotent(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := persistence.Open(timeout(t), persistence.Config{Conn: nc, Node: fmt.Sprintf("node-%d", i)})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...), "concurrent opens")

	open(t, nc, "node-a") // once more, with the defaults
	st := streamConfig(t, nc, "HIVE_EVENTS")
	assert.Equal(t, []string{"hive.v1.events.>"}, st.Subjects)
	assert.Equal(t, persistence.DefaultMaxAge, st.MaxAge)
	assert.Equal(t, int64(persistence.DefaultMaxBytes), st.MaxBytes)
	assert.Equal(t, jetstream.FileStorage, st.Storage)
	assert.Equal(t, jetstream.DiscardOld, st.Discard)

	s, err := persistence.Open(timeout(t), persistence.Config{Conn: nc, Node: "node-a", MaxAge: time.Hour, MaxBytes: 1 << 20})
	require.NoError(t, err, "open with other limits")
	require.NoError(t, s.Close())
	st = streamConfig(t, nc, "HIVE_EVENTS")
	assert.Equal(t, time.Hour, st.MaxAge, "updated max age")
	assert.Equal(t, int64(1<<20), st.MaxBytes, "updated max bytes")
}

func streamConfig(t *testing.T, nc *nats.Conn, name string) jetstream.StreamConfig {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(timeout(t), name)
	require.NoError(t, err, "stream %s", name)
	return st.CachedInfo().Config
}

// TestOpenWithoutJetStream: a server without JetStream answers at once
// that nobody serves its API, well before any deadline.
func TestOpenWithoutJetStream(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServerWith(t, server.Options{}))
	_, err := persistence.Open(timeout(t), persistence.Config{Conn: nc, Node: "node-a"})
	require.ErrorIs(t, err, persistence.ErrUnavailable)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Open waited for its deadline instead of failing at once")

	err = persistence.ReadAudit(timeout(t), nc, subjects, persistence.Query{}, func(persistence.Entry) error { return nil })
	require.ErrorIs(t, err, persistence.ErrUnavailable, "read audit")
}

func TestOpenRefusesBadConfig(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	for _, tc := range []struct {
		name string
		cfg  persistence.Config
		want string
	}{
		{"no connection", persistence.Config{Node: "node-a"}, "Conn is nil"},
		{"no node", persistence.Config{Conn: nc}, "Node: node name is empty"},
		{"dotted node", persistence.Config{Conn: nc, Node: "a.b"}, `node name "a.b" contains '.'`},
		{"negative age", persistence.Config{Conn: nc, Node: "a", MaxAge: -time.Second}, "want MaxAge >= 0"},
		{"too many replicas", persistence.Config{Conn: nc, Node: "a", Replicas: 6}, "Replicas <= 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := persistence.Open(timeout(t), tc.cfg)
			require.ErrorIs(t, err, persistence.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ prefix, stream, bucket string }{
		{"", "HIVE_EVENTS", "hive_breakers"},
		{"hive", "HIVE_EVENTS", "hive_breakers"},
		{"acme.hive-2", "ACME_HIVE-2_EVENTS", "acme_hive-2_breakers"},
	} {
		s := bus.NewSubjects(tc.prefix)
		assert.Equal(t, tc.stream, persistence.StreamName(s), "stream of prefix %q", tc.prefix)
		assert.Equal(t, tc.bucket, persistence.BucketName(s), "bucket of prefix %q", tc.prefix)
	}
}

// TestOtherPrefix: a deployment under another prefix gets its own stream,
// which captures its own events only.
func TestOtherPrefix(t *testing.T) {
	nc := bustest.Connect(t, bustest.NewServer(t))
	acme := bus.NewSubjects("acme.hive")
	s, err := persistence.Open(timeout(t), persistence.Config{Conn: nc, Subjects: acme, Node: "node-a"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	assert.Equal(t, []string{"acme.hive.v1.events.>"}, streamConfig(t, nc, "ACME_HIVE_EVENTS").Subjects)

	bus.NewEvents(nc, acme, testLogger(t)).Breaker(&messages.BreakerTransition{Node: "node-a", Model: "m"})
	var got []persistence.Entry
	err = persistence.ReadAudit(timeout(t), nc, acme, persistence.Query{Follow: true}, func(e persistence.Entry) error {
		got = append(got, e)
		return errEnough
	})
	require.ErrorIs(t, err, errEnough)
	assert.Equal(t, "breaker", got[0].Kind)
	assert.Equal(t, "m", got[0].Model)
}

func TestInfo(t *testing.T) {
	nc, store := withStore(t)
	info, err := store.Info(timeout(t))
	require.NoError(t, err)
	assert.Equal(t, persistence.StreamInfo{Stream: "HIVE_EVENTS"}, info, "empty stream")

	publishMix(t, nc)
	info, err = store.Info(timeout(t))
	require.NoError(t, err)
	assert.Equal(t, uint64(7), info.Messages)
	assert.NotZero(t, info.Bytes)
	assert.False(t, info.Last.Before(info.First), "first %s, last %s", info.First, info.Last)
}
