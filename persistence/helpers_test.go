package persistence_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// wait bounds every wait in these tests. It is a deadline for a failure,
// never a sleep.
const wait = 10 * time.Second

var (
	subjects = bus.NewSubjects("")
	// eventsBase is "hive.v1.events.", for kinds bus does not know.
	eventsBase = strings.TrimSuffix(subjects.Events(), ">")
)

// timeout returns a context that ends after wait, cancelled at cleanup.
func timeout(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t))
}

// open opens a Store for node on nc and closes it at cleanup, before the
// connection and the server (cleanups run last-registered first).
func open(t *testing.T, nc *nats.Conn, node string) *persistence.Store {
	t.Helper()
	s, err := persistence.Open(timeout(t), persistence.Config{Conn: nc, Subjects: subjects, Node: node, Logger: testLogger(t)})
	require.NoError(t, err, "open store for %s", node)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// withStore starts a JetStream server, connects to it and opens node-a's
// Store, so that the audit stream exists.
func withStore(t *testing.T) (*nats.Conn, *persistence.Store) {
	t.Helper()
	nc := bustest.Connect(t, bustest.NewServer(t))
	return nc, open(t, nc, "node-a")
}

// publishAdmin publishes an admin command's audit event the way bus.Admin
// does: protobuf with the Content-Type and Hive-Type headers.
func publishAdmin(t *testing.T, nc *nats.Conn, node, command string, cmd *messages.AdminCommand) {
	t.Helper()
	body, err := proto.Marshal(cmd)
	require.NoError(t, err)
	msg := nats.NewMsg(subjects.AdminAudit(node, command))
	msg.Header.Set(bus.ContentTypeHeader, bus.Protobuf.ContentType())
	msg.Header.Set(bus.TypeHeader, bus.TypeName(cmd))
	msg.Data = body
	require.NoError(t, nc.PublishMsg(msg))
}

var errEnough = errors.New("enough entries")

// awaitStored waits until the audit stream holds n events, by following it:
// events are published with core NATS, so their storing is only observable
// on the stream itself.
func awaitStored(t *testing.T, nc *nats.Conn, n int) {
	t.Helper()
	got := 0
	err := persistence.ReadAudit(timeout(t), nc, subjects, persistence.Query{Follow: true}, func(persistence.Entry) error {
		if got++; got == n {
			return errEnough
		}
		return nil
	})
	require.ErrorIs(t, err, errEnough, "stream holds %d events, want %d", got, n)
}

// read returns every entry q selects, without following.
func read(t *testing.T, nc *nats.Conn, q persistence.Query) []persistence.Entry {
	t.Helper()
	var got []persistence.Entry
	err := persistence.ReadAudit(timeout(t), nc, subjects, q, func(e persistence.Entry) error {
		got = append(got, e)
		return nil
	})
	require.NoError(t, err, "read audit %+v", q)
	return got
}

// subjectsOf lists the entries' subjects relative to the events base, for
// failure messages that read like the test.
func subjectsOf(es []persistence.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = strings.TrimPrefix(e.Subject, eventsBase)
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// next returns the next entry a following read delivers, failing the test
// if the read returns first or ctx ends.
func next(t *testing.T, ctx context.Context, entries <-chan persistence.Entry, done <-chan error) persistence.Entry {
	t.Helper()
	select {
	case e := <-entries:
		return e
	case err := <-done:
		t.Fatalf("read returned %v before the event came", err)
	case <-ctx.Done():
		t.Fatal("no event within the deadline")
	}
	return persistence.Entry{}
}
