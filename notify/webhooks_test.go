package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for a delivery; they take milliseconds.
const waitLimit = 5 * time.Second

// fast is the settings of the tests: millisecond retries.
var fast = settings{limit: 256, backoff: time.Millisecond, maxBackoff: 4 * time.Millisecond}

// secretPath and secretToken stand for the secret a Slack webhook URL
// holds; no log line may contain them.
const (
	secretPath  = "/services/T0001/B0002/XXXXsecretXXXX"
	secretToken = "tok3n-s3cret"
)

// received is one request an endpoint got.
type received struct {
	body        []byte
	contentType string
}

// endpoint is an httptest server that records what it receives. status
// gives the answer to the n-th request (from 1); hold, when set, makes
// each request wait until it is closed or the request is cancelled.
type endpoint struct {
	srv    *httptest.Server
	got    chan received
	n      atomic.Int32
	status func(n int) int
	hold   chan struct{}
}

func newEndpoint(t *testing.T, status func(n int) int) *endpoint {
	t.Helper()
	e := &endpoint{got: make(chan received, 100), status: status}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := int(e.n.Add(1))
		e.got <- received{body: body, contentType: r.Header.Get("Content-Type")}
		if e.hold != nil {
			select {
			case <-e.hold:
			case <-r.Context().Done():
				return
			}
		}
		code := http.StatusOK
		if e.status != nil {
			code = e.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// url is the endpoint's URL with a secret in its path and query.
func (e *endpoint) url() string { return e.srv.URL + secretPath + "?token=" + secretToken }

// next waits for the next request.
func (e *endpoint) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-e.got:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no request within %v", waitLimit)
		return received{}
	}
}

// none checks that no further request came.
func (e *endpoint) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-e.got:
		t.Errorf("unexpected request: %s", r.body)
	default:
	}
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// noSecret checks that the log holds no part of the secret URL.
func (b *logBuffer) noSecret(t *testing.T) {
	t.Helper()
	out := b.String()
	for _, s := range []string{secretPath, "XXXXsecretXXXX", secretToken, "user:pass"} {
		assert.NotContains(t, out, s, "log output")
	}
}

// start returns Webhooks over hooks with fast retries and a captured log,
// closed at cleanup.
func start(t *testing.T, s settings, hooks ...Hook) (*Webhooks, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	w := newWebhooks(hooks, zerolog.New(logs).Level(zerolog.DebugLevel), s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w, logs
}

// closeNow closes w, waiting at most waitLimit.
func closeNow(t *testing.T, w *Webhooks) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, w.Close(ctx), "close")
}

func alert(id string, sev messages.Alert_Severity) *messages.Alert {
	return &messages.Alert{
		Time: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), Id: id, Rule: "open_breakers",
		Severity: sev, State: messages.Alert_fired, Node: "node-a", Message: "2 breakers open", Value: 2, Threshold: 2,
	}
}

func idOf(t *testing.T, r received) string {
	t.Helper()
	var a messages.Alert
	require.NoError(t, protojson.Unmarshal(r.body, &a), "body %s", r.body)
	return a.Id
}

func TestDeliversJSON(t *testing.T) {
	e := newEndpoint(t, nil)
	w, logs := start(t, fast, Hook{URL: e.url()})
	sent := alert("a1", messages.Alert_info)
	w.Alert(sent)

	r := e.next(t)
	assert.Equal(t, "application/json", r.contentType, "content type")
	var got messages.Alert
	require.NoError(t, protojson.Unmarshal(r.body, &got), "body %s", r.body)
	assert.True(t, proto.Equal(sent, &got), "decoded alert %v, want %v", &got, sent)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(r.body, &raw))
	assert.Equal(t, "fired", raw["state"], "state, present though it is the zero value")
	assert.Equal(t, "info", raw["severity"], "severity, present though it is the zero value")
	assert.Contains(t, raw, "threshold", "lowerCamelCase field names")

	closeNow(t, w)
	assert.Equal(t, Stats{Delivered: 1}, w.Stats(), "stats")
	logs.noSecret(t)
}

func TestRetriesAfterServerErrorThenDelivers(t *testing.T) {
	e := newEndpoint(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	w, logs := start(t, fast, Hook{URL: e.url(), Retries: 3})
	w.Alert(alert("a1", messages.Alert_critical))
	assert.Equal(t, "a1", idOf(t, e.next(t)), "first attempt")
	assert.Equal(t, "a1", idOf(t, e.next(t)), "retry")
	closeNow(t, w)
	e.none(t)
	assert.Equal(t, Stats{Delivered: 1}, w.Stats(), "stats")
	assert.Contains(t, logs.String(), "retrying", "log of the failed attempt")
	assert.Contains(t, logs.String(), "endpoint answered 500", "log names the status")
	logs.noSecret(t)
}

// After Retries further attempts the alert is dropped for that hook, and
// the next alert is posted as usual.
func TestGivesUpAfterRetriesAndKeepsGoing(t *testing.T) {
	e := newEndpoint(t, func(n int) int {
		if n <= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	w, logs := start(t, fast, Hook{URL: e.url(), Retries: 2})
	w.Alert(alert("doomed", messages.Alert_critical))
	w.Alert(alert("next", messages.Alert_critical))
	for i := range 3 {
		assert.Equal(t, "doomed", idOf(t, e.next(t)), "attempt %d", i+1)
	}
	assert.Equal(t, "next", idOf(t, e.next(t)), "the alert after the dropped one")
	closeNow(t, w)
	e.none(t)
	assert.Equal(t, Stats{Delivered: 1, Failed: 1}, w.Stats(), "stats")
	assert.Contains(t, logs.String(), "webhook delivery failed: alert dropped", "log of the give-up")
	assert.Contains(t, logs.String(), `"host":"127.0.0.1"`, "log names the host")
	assert.Contains(t, logs.String(), `"hook":0`, "log names the hook's index")
	logs.noSecret(t)
}

// A client error other than 408 and 429 is not retried: it would fail the
// same way.
func TestClientErrorIsNotRetried(t *testing.T) {
	e := newEndpoint(t, func(int) int { return http.StatusNotFound })
	w, logs := start(t, fast, Hook{URL: e.url(), Retries: 3})
	w.Alert(alert("a1", messages.Alert_critical))
	e.next(t)
	closeNow(t, w)
	e.none(t)
	assert.Equal(t, Stats{Failed: 1}, w.Stats(), "stats")
	logs.noSecret(t)
}

func TestMinSeverityFilters(t *testing.T) {
	e := newEndpoint(t, nil)
	w, _ := start(t, fast, Hook{URL: e.url(), MinSeverity: messages.Alert_warning})
	w.Alert(alert("info", messages.Alert_info))
	w.Alert(alert("warning", messages.Alert_warning))
	w.Alert(alert("critical", messages.Alert_critical))
	assert.Equal(t, "warning", idOf(t, e.next(t)), "first posted")
	assert.Equal(t, "critical", idOf(t, e.next(t)), "second posted")
	closeNow(t, w)
	e.none(t)
}

func TestSlackBody(t *testing.T) {
	e := newEndpoint(t, nil)
	w, _ := start(t, fast, Hook{URL: e.url(), Format: FormatSlack})
	w.Alert(alert("a1", messages.Alert_critical))
	acked := alert("a1", messages.Alert_critical)
	acked.State, acked.Actor, acked.Message = messages.Alert_acknowledged, "alice", "2 breakers\nopen"
	w.Alert(acked)

	assert.JSONEq(t, `{"text": "[CRITICAL] open_breakers fired on node-a: 2 breakers open"}`, string(e.next(t).body), "fired")
	r := e.next(t)
	assert.Equal(t, "application/json", r.contentType, "content type")
	assert.JSONEq(t, `{"text": "[CRITICAL] open_breakers acknowledged on node-a: 2 breakers open (by alice)"}`, string(r.body), "acknowledged, one line")
	closeNow(t, w)
}

// Close posts what is queued before it returns.
func TestCloseDrains(t *testing.T) {
	e := newEndpoint(t, nil)
	e.hold = make(chan struct{})
	w, _ := start(t, fast, Hook{URL: e.url()})
	for i := range 5 {
		w.Alert(alert(fmt.Sprint(i), messages.Alert_critical))
	}
	assert.Equal(t, "0", idOf(t, e.next(t)), "first, held")

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		closed <- w.Close(ctx)
	}()
	close(e.hold)
	for i := 1; i < 5; i++ {
		assert.Equal(t, fmt.Sprint(i), idOf(t, e.next(t)), "queued alert %d, in order", i)
	}
	select {
	case err := <-closed:
		require.NoError(t, err, "close")
	case <-time.After(waitLimit):
		t.Fatal("Close did not return")
	}
	assert.Equal(t, Stats{Delivered: 5}, w.Stats(), "stats")
	w.Alert(alert("late", messages.Alert_critical))
	e.none(t)
	require.NoError(t, w.Close(context.Background()), "second close")
}

// When Close's context ends first, the attempt in flight is cancelled and
// the rest is dropped, counted and logged.
func TestCloseGivesUpWhenItsContextEnds(t *testing.T) {
	e := newEndpoint(t, nil)
	e.hold = make(chan struct{}) // never released
	w, logs := start(t, fast, Hook{URL: e.url(), Retries: 5})
	for i := range 3 {
		w.Alert(alert(fmt.Sprint(i), messages.Alert_critical))
	}
	e.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "close: %v, want the context's error", err)
	st := w.Stats()
	assert.Equal(t, int64(3), st.Dropped+st.Failed, "alerts not delivered: %+v", st)
	assert.Equal(t, int64(0), st.Delivered, "delivered")
	assert.Contains(t, logs.String(), "webhook closed before", "log of the abandoned alerts")
	logs.noSecret(t)
}

// A full queue drops its oldest alert.
func TestFullQueueDropsOldest(t *testing.T) {
	e := newEndpoint(t, nil)
	e.hold = make(chan struct{})
	s := fast
	s.limit = 2
	w, logs := start(t, s, Hook{URL: e.url()})
	w.Alert(alert("1", messages.Alert_critical))
	assert.Equal(t, "1", idOf(t, e.next(t)), "in flight")
	for _, id := range []string{"2", "3", "4", "5"} {
		w.Alert(alert(id, messages.Alert_critical))
	}
	close(e.hold)
	assert.Equal(t, "4", idOf(t, e.next(t)), "after the held one: the older of the two kept")
	assert.Equal(t, "5", idOf(t, e.next(t)), "the newest")
	closeNow(t, w)
	e.none(t)
	assert.Equal(t, Stats{Delivered: 3, Dropped: 2}, w.Stats(), "stats")
	assert.Contains(t, logs.String(), "webhook queue full: oldest alert dropped", "log of the drop")
}

// An unreachable endpoint with user info in its URL: the errors logged
// name neither the path, the query nor the user info.
func TestURLNeverLogged(t *testing.T) {
	e := newEndpoint(t, nil)
	u, err := url.Parse(e.url())
	require.NoError(t, err)
	u.User = url.UserPassword("user", "pass")
	e.srv.Close() // connection refused from now on
	w, logs := start(t, fast, Hook{URL: u.String(), Retries: 1, Timeout: time.Second},
		Hook{URL: "ftp://user:pass@example.com" + secretPath}, Hook{URL: e.url(), Format: "xml"})
	w.Alert(alert("a1", messages.Alert_critical))
	closeNow(t, w)
	assert.Equal(t, Stats{Failed: 1}, w.Stats(), "stats")
	out := logs.String()
	assert.Contains(t, out, "webhook delivery failed", "log of the failure")
	assert.Contains(t, out, "connection refused", "log of the cause")
	assert.Contains(t, out, "not an absolute http(s) URL", "log of the bad URL")
	assert.Contains(t, out, "unknown format", "log of the bad format")
	logs.noSecret(t)
}

func TestRedact(t *testing.T) {
	raw := "https://user:pass@hooks.example.com" + secretPath + "?token=" + secretToken
	err := redact(&url.Error{Op: "Post", URL: raw, Err: context.DeadlineExceeded}, raw)
	assert.Equal(t, "post: context deadline exceeded", err.Error(), "redacted text")
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "still matches its cause")

	err = redact(fmt.Errorf("odd failure at %s", raw), raw)
	assert.NotContains(t, err.Error(), "secret", "text of a foreign error")
	assert.Nil(t, errors.Unwrap(err), "a foreign error is not kept: its text may hold the URL")
}

func TestSlackLine(t *testing.T) {
	a := &messages.Alert{Rule: "model_unavailable", Severity: messages.Alert_warning, State: messages.Alert_resolved, Node: "n1",
		Message: "  gpt-5   answers\tagain \n"}
	assert.Equal(t, "[WARNING] model_unavailable resolved on n1: gpt-5 answers again", SlackLine(a))
	a.Message = ""
	assert.Equal(t, "[WARNING] model_unavailable resolved on n1", SlackLine(a), "no message")
	assert.False(t, strings.ContainsAny(SlackLine(a), "\n\r"), "one line")
}
