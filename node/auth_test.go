package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

// examplePasswords are the passwords deploy/nats-server.conf reads from the
// environment, by user.
var examplePasswords = map[string]string{
	"app": "HIVE_APP_PASSWORD", "batch": "HIVE_BATCH_PASSWORD",
	"n1": "HIVE_N1_PASSWORD", "n2": "HIVE_N2_PASSWORD", "operator": "HIVE_OPERATOR_PASSWORD",
}

// exampleServer runs a real server configured with deploy/nats-server.conf.
func exampleServer(t *testing.T) *server.Server {
	t.Helper()
	for user, env := range examplePasswords {
		t.Setenv(env, user+"-secret")
	}
	opts, err := server.ProcessConfigFile("../deploy/nats-server.conf")
	require.NoError(t, err)
	opts.StoreDir = t.TempDir()
	return bustest.NewServerWith(t, *opts)
}

// connectAs connects as user with inbox prefix inbox ("" for the default);
// permission violations go to errs when it is not nil.
func connectAs(t *testing.T, srv *server.Server, user, inbox string, errs chan<- error) *nats.Conn {
	t.Helper()
	opts := []nats.Option{nats.UserInfo(user, user+"-secret")}
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	if errs != nil {
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	}
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// startExampleNode runs node n1 as the example's user n1, with its private
// inbox, chaos enabled and an HTTP address for /metrics.
func startExampleNode(t *testing.T, srv *server.Server) *Node {
	t.Helper()
	t.Setenv(bus.EnvUser, "n1")
	t.Setenv(bus.EnvPassword, "n1-secret")
	cfg, err := config.Parse(config.GlobalFile, []byte("chaos: {enabled: true}\n"), config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	opts := bus.ConnectOptions{URLs: srv.ClientURL(), InboxPrefix: "_INBOX.n1"}
	opts.FromEnv() // the example's user, as hive-node serve reads it
	n, err := Start(context.Background(), Config{Files: cfg, ID: "n1", NATS: opts, HTTPAddr: "127.0.0.1:0"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Stop()) })
	return n
}

// awaitViolation waits for the server's permissions violation on errs.
func awaitViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		assert.True(t, errors.Is(err, nats.ErrPermissionViolation), "%s: got %v, want a permissions violation", what, err)
	case <-time.After(requestLimit):
		t.Fatalf("%s: got no permissions violation from the server", what)
	}
}

// TestExamplePermissions runs a node as the node user n1 of
// deploy/nats-server.conf: it serves, keeps its audit trail and breaker
// states in JetStream, and answers the operator; the app user may infer
// and nothing else.
func TestExamplePermissions(t *testing.T) {
	srv := exampleServer(t)
	n := startExampleNode(t, srv)
	require.NotNil(t, n.store, "persistence under the node user's permissions: %s", n.persistenceDetail)

	errs := make(chan error, 8)
	app := connectAs(t, srv, "app", "_INBOX.app", errs)
	// Inference is allowed.
	_, resp := requestJSON(t, app, `{"model":"primary","messages":[{"role":"user","content":"hi"}]}`)
	assert.Nil(t, resp.GetError())
	assert.Equal(t, "primary", resp.GetServedBy())

	// So are durable jobs, under the node user's JetStream permissions.
	acc, err := bus.SubmitJob(t.Context(), app, bus.Subjects{}, &messages.InferRequest{Model: "primary",
		Messages: []*messages.ChatMessage{{Role: "user", Content: "a job"}}})
	require.NoError(t, err)
	require.Nil(t, acc.GetError())
	st, err := bus.GetJob(t.Context(), app, bus.Subjects{}, acc.GetJobId(), requestLimit)
	require.NoError(t, err)
	assert.Equal(t, messages.JobStatus_done, st.GetState(), "job %v", st)
	assert.Equal(t, "n1", st.GetNode())

	// Admin is refused by the server: the request never reaches the node.
	_, err = app.Request("hive.v1.admin.all.breaker_open", []byte(`{"model":"primary"}`), 2*time.Second)
	require.Error(t, err, "the app user must not reach admin subjects")
	awaitViolation(t, errs, "admin request")
	// Nor may it listen to the event stream.
	_, err = app.SubscribeSync("hive.v1.events.>")
	require.NoError(t, err) // refused asynchronously
	awaitViolation(t, errs, "event subscription")

	// The breaker did not move; the operator can move it.
	operator := connectAs(t, srv, "operator", "", nil)
	replies, err := bus.AdminRequest(t.Context(), operator, bus.Subjects{}, "n1", bus.CmdStatus, nil, time.Second)
	require.NoError(t, err)
	for _, m := range replies[0].GetStatus().GetModels() {
		assert.Equal(t, messages.BreakerState_closed, m.GetBreaker(), "model %s", m.GetName())
	}
	replies, err = bus.AdminRequest(t.Context(), operator, bus.Subjects{}, "n1", bus.CmdBreakerOpen,
		&messages.AdminCommand{Model: "primary", Actor: "ops"}, time.Second)
	require.NoError(t, err)
	require.True(t, replies[0].GetOk(), "reply %v", replies[0])
	assert.Equal(t, messages.BreakerState_forced_open, replies[0].GetStatus().GetModels()[0].GetBreaker())
}

// TestAppsCannotReadEachOthersAnswers: with the example permissions an
// application reads its own inbox only: not every inbox, not another
// application's, and without its prefix it cannot even get an answer.
func TestAppsCannotReadEachOthersAnswers(t *testing.T) {
	srv := exampleServer(t)
	startExampleNode(t, srv)
	errs := make(chan error, 8)
	spy := connectAs(t, srv, "app", "_INBOX.app", errs)
	for _, subject := range []string{"_INBOX.>", "_INBOX.batch.>", ">"} {
		_, err := spy.SubscribeSync(subject)
		require.NoError(t, err) // refused asynchronously
		awaitViolation(t, errs, "subscribe "+subject)
	}
	// The victim gets its answer in its own inbox, which the spy cannot
	// subscribe to.
	victim := connectAs(t, srv, "batch", "_INBOX.batch", nil)
	_, resp := requestJSON(t, victim, `{"model":"primary","messages":[{"role":"user","content":"my secret prompt"}]}`)
	require.Nil(t, resp.GetError())
	assert.Contains(t, resp.GetContent(), "my secret prompt")

	// Without its inbox prefix an application's reply subscription is
	// refused, so it learns at once that it must set it.
	lost := connectAs(t, srv, "app", "", errs)
	_, err := lost.Request("hive.v1.infer", []byte(`{"model":"primary","messages":[{"role":"user","content":"hi"}]}`), 2*time.Second)
	require.Error(t, err)
	awaitViolation(t, errs, "default inbox")
}

// TestReplyHijackHasNoEffect: as the infer-only app user, requests whose
// reply subject is a Hive subject try to make the node publish an
// InferResponse there (with requestId set to a model name, a protobuf
// InferResponse decodes as an AdminCommand for that model). Each is
// dropped unserved and counted, and nothing changes: no breaker forced
// open, no model disabled, no fault injected, no forged event.
func TestReplyHijackHasNoEffect(t *testing.T) {
	srv := exampleServer(t)
	n := startExampleNode(t, srv)
	operator := connectAs(t, srv, "operator", "", nil)
	events, err := operator.SubscribeSync("hive.v1.events.>")
	require.NoError(t, err)
	require.NoError(t, operator.Flush())

	app := connectAs(t, srv, "app", "_INBOX.app", nil)
	targets := []string{
		"hive.v1.admin.n1.breaker_open",
		"hive.v1.admin.all.model_disable",
		"hive.v1.chaos.n1.inject",
		"hive.v1.events.breaker.n1.primary",
		"hive.v1.infer",         // a loop back into the ingress
		"hive.v1.infer.primary", // or into a model's own subject
		"_INBOX.>",              // a wildcard is no inbox
		"hive.v1.admin.all.drain",
	}
	req := &messages.InferRequest{Model: "not-configured", RequestId: "primary",
		Messages: []*messages.ChatMessage{{Role: "user", Content: "x"}}}
	pb, err := proto.Marshal(req)
	require.NoError(t, err)
	bodies := map[string][]byte{"protobuf": pb, "json": []byte(`{"model":"not-configured","requestId":"primary","messages":[{"role":"user","content":"x"}]}`)}
	sent := 0
	for _, target := range targets {
		for _, body := range bodies {
			require.NoError(t, app.PublishRequest("hive.v1.infer", target, body))
			sent++
		}
	}
	require.NoError(t, app.Flush())
	// Polling: a refusal emits no event, only a count.
	require.Eventually(t, func() bool { return n.replies.Refused() == int64(sent) }, requestLimit, 5*time.Millisecond,
		"refused %d of %d", n.replies.Refused(), sent)
	assert.Equal(t, float64(sent), counter(scrape(t, n), "hive_refused_replies_total", map[string]string{"endpoint": "infer"}))

	// No effect: every model closed and enabled, no fault, the node serving.
	replies, err := bus.AdminRequest(t.Context(), operator, bus.Subjects{}, "n1", bus.CmdStatus, nil, time.Second)
	require.NoError(t, err)
	st := replies[0].GetStatus()
	assert.False(t, st.GetDraining(), "drained by a hijacked reply")
	for _, m := range st.GetModels() {
		assert.Equal(t, messages.BreakerState_closed, m.GetBreaker(), "model %s", m.GetName())
		assert.True(t, m.GetEnabled(), "model %s", m.GetName())
	}
	assert.Empty(t, n.chaos.Active(), "faults injected by a hijacked reply")
	_, resp := requestJSON(t, app, `{"model":"primary","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, "primary", resp.GetServedBy())

	// No forged event: the first event the node publishes after the
	// attempts is the audit record of the operator's own command.
	replies, err = bus.AdminRequest(t.Context(), operator, bus.Subjects{}, "n1", bus.CmdBreakerReset,
		&messages.AdminCommand{Model: "backup", Actor: "sentinel"}, time.Second)
	require.NoError(t, err)
	require.True(t, replies[0].GetOk())
	ctx, cancel := context.WithTimeout(t.Context(), requestLimit)
	defer cancel()
	for {
		m, err := events.NextMsgWithContext(ctx)
		require.NoError(t, err, "the sentinel's audit event never came")
		assert.NotEqual(t, bus.TypeName(&messages.InferResponse{}), m.Header.Get(bus.TypeHeader), "an infer reply on %s", m.Subject)
		assert.NotEqual(t, "hive.v1.events.breaker.n1.primary", m.Subject, "a forged breaker event")
		if m.Subject == "hive.v1.events.admin.n1.breaker_reset" {
			break
		}
	}
}
