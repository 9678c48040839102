package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/messages"
)

// fakeCluster is a scripted Cluster: one node whose counters grow by 10
// requests (8 successes, 2 failures) per Status call, events the test
// sends one at a time, and admin calls recorded.
type fakeCluster struct {
	models     int
	subscribed chan struct{} // closed when Events starts
	once       sync.Once
	events     chan Event    // Events delivers what the test sends here
	delivered  chan struct{} // one token per event handed to the eventHub

	mu     sync.Mutex // guards the fields below
	calls  int64
	admins []adminCall
}

type adminCall struct {
	node, command string
	cmd           *messages.AdminCommand
}

func newFakeCluster(models int) *fakeCluster {
	return &fakeCluster{models: models, subscribed: make(chan struct{}), events: make(chan Event), delivered: make(chan struct{})}
}

func (f *fakeCluster) Status(ctx context.Context) ([]*messages.NodeStatus, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	st := &messages.NodeStatus{Node: "n1", Version: "test", Started: timestamppb.Now(),
		Alerts: []*messages.Alert{{Id: "a1", Rule: "open_breakers", Severity: messages.Alert_warning, Node: "n1", Message: "1 open"}}}
	for i := range f.models {
		name := "gpt-5"
		if i > 0 {
			name = fmt.Sprintf("model-%02d", i)
		}
		st.Models = append(st.Models, &messages.ModelStatus{
			Name: name, Provider: "sim", Breaker: messages.BreakerState_closed, Health: messages.HealthStatus_available,
			RampPercent: 100, MaxConcurrent: 10, Enabled: true,
			Requests: 10 * n, Successes: 8 * n, Failures: 2 * n,
			Evidence:     &messages.Evidence{Calls: 10, LatencyP50Ms: 12.345, LatencyP99Ms: 48},
			BreakerSince: timestamppb.Now(),
		})
	}
	return []*messages.NodeStatus{st}, nil
}

func (f *fakeCluster) Events(ctx context.Context, fn func(Event)) error {
	f.once.Do(func() { close(f.subscribed) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-f.events:
			fn(e)
			f.delivered <- struct{}{}
		}
	}
}

func (f *fakeCluster) Admin(ctx context.Context, node, command string, cmd *messages.AdminCommand) ([]*messages.AdminReply, error) {
	f.mu.Lock()
	f.admins = append(f.admins, adminCall{node, command, proto.Clone(cmd).(*messages.AdminCommand)})
	f.mu.Unlock()
	return []*messages.AdminReply{{Ok: true, Node: "n1", Message: command + " " + cmd.GetModel() + ": done"}}, nil
}

func (f *fakeCluster) adminCalls() []adminCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]adminCall(nil), f.admins...)
}

// send hands e to the eventHub and waits until the eventHub has it.
func (f *fakeCluster) send(t *testing.T, e Event) {
	t.Helper()
	waitFor(t, f.subscribed, "the eventHub subscribing")
	select {
	case f.events <- e:
	case <-timeout():
		t.Fatal("the eventHub did not take an event")
	}
	select {
	case <-f.delivered:
	case <-timeout():
		t.Fatal("the eventHub did not finish an event")
	}
}

// dashHandler builds the gateway with the dashboard over c.
func dashHandler(t *testing.T, c Cluster, token string) *wire {
	t.Helper()
	h, err := New(Config{Node: "n1", Dispatcher: newFake(t), Readiness: ready{}, Cluster: c, AdminToken: token})
	require.NoError(t, err)
	return serveWire(t, h)
}

func getPath(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// The page and its assets come from the binary, with their content types,
// and load nothing from elsewhere.
func TestDashboardServesItsFiles(t *testing.T) {
	h := dashHandler(t, newFakeCluster(1), "")
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `data-app="hive-dashboard"`},
		{"/assets/dashboard.js", "text/javascript; charset=utf-8", "EventSource"},
		{"/assets/dashboard.css", "text/css; charset=utf-8", ".badge"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := getPath(t, h, tt.path)
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, tt.contentType, rec.Header().Get("Content-Type"))
			assert.Contains(t, rec.Body.String(), tt.contains)
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
		})
	}
	csp := getPath(t, h, "/").Header().Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'self'", "the browser itself refuses anything from elsewhere")
	assert.Equal(t, http.StatusNotFound, getPath(t, h, "/assets/nosuch.js").Code)
	assert.Equal(t, http.StatusNotFound, getPath(t, h, "/nosuch").Code)

	// Nothing in the page refers to another origin.
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`)
	require.NoError(t, fs.WalkDir(staticFiles, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(path)
		require.NoError(t, err)
		assert.Empty(t, external.FindAllString(string(b), -1), "%s loads something from elsewhere", path)
		return nil
	}))
}

func TestDashboardAbsentWithoutCluster(t *testing.T) {
	b, err := New(Config{Node: "n1", Dispatcher: newFake(t), Readiness: ready{}})
	require.NoError(t, err)
	h := serveWire(t, b)
	for _, path := range []string{"/", "/api/state", "/api/events", "/assets/dashboard.js"} {
		assert.Equal(t, http.StatusNotFound, getPath(t, h, path).Code, path)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/admin/breaker_open", strings.NewReader(`{}`)))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}

// stateBody is /api/state as a client reads it.
type stateBody struct {
	Node         string `json:"node"`
	AdminEnabled bool   `json:"adminEnabled"`
	IntervalMs   int64  `json:"intervalMs"`
	WindowMs     int64  `json:"windowMs"`
	SampledAt    int64  `json:"sampledAt"`
	Nodes        []struct {
		Node   string `json:"node"`
		Models []struct {
			Name         string `json:"name"`
			Breaker      string `json:"breaker"`
			Health       string `json:"health"`
			RampPercent  int    `json:"rampPercent"`
			InFlight     int    `json:"inFlight"`
			Requests     string `json:"requests"`
			BreakerSince string `json:"breakerSince"`
			Evidence     struct {
				LatencyP99Ms float64 `json:"latencyP99Ms"`
			} `json:"evidence"`
		} `json:"models"`
		Alerts []struct {
			ID string `json:"id"`
		} `json:"alerts"`
	} `json:"nodes"`
	Seen        map[string]int64         `json:"seen"`
	History     map[string][]samplePoint `json:"history"`
	Points      map[string][]float64     `json:"points"`
	Events      []eventJSON              `json:"events"`
	LastEventID string                   `json:"lastEventId"`
}

// /api/state: every node's status with every field present, and the
// history the sampler kept: counter deltas and latency per sample.
func TestDashboardState(t *testing.T) {
	fc := newFakeCluster(2)
	h := dashHandler(t, fc, "secret")
	ctx := context.Background()
	start := time.Now()
	h.dash.sampler.sample(ctx, start) // the baseline
	h.dash.sampler.sample(ctx, start) // one samplePoint: 10 requests since

	rec := getPath(t, h, "/api/state")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var s stateBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &s), rec.Body.String())
	assert.Equal(t, "n1", s.Node)
	assert.True(t, s.AdminEnabled, "a token is configured; the state says so, never what it is")
	assert.NotContains(t, rec.Body.String(), "secret")
	assert.Equal(t, int64(2000), s.IntervalMs)
	assert.Equal(t, int64(600000), s.WindowMs)
	require.Len(t, s.Nodes, 1)
	require.Len(t, s.Nodes[0].Models, 2)
	m := s.Nodes[0].Models[0]
	assert.Equal(t, "gpt-5", m.Name)
	assert.Equal(t, "closed", m.Breaker, "zero values are present (closed is the enum's zero)")
	assert.Equal(t, "available", m.Health)
	assert.Equal(t, 0, m.InFlight)
	assert.NotEmpty(t, m.BreakerSince)
	assert.Equal(t, 48.0, m.Evidence.LatencyP99Ms)
	require.Len(t, s.Nodes[0].Alerts, 1)
	assert.Contains(t, s.Seen, "n1")

	hist := s.History["n1/gpt-5"]
	require.NotEmpty(t, hist, "history: %v", s.History)
	p := hist[len(hist)-1]
	assert.Equal(t, []float64{10, 8, 2, 12.35, 48}, p[1:], "Δrequests, Δsuccesses, Δfailures, p50, p99")
	assert.InDelta(t, float64(time.Now().UnixMilli()), p[0], float64(time.Minute.Milliseconds()))
	assert.Contains(t, s.History, "n1/model-01")
}

// Sixty models with a few minutes of history: the state is gzipped.
func TestDashboardStateOfManyModels(t *testing.T) {
	fc := newFakeCluster(60)
	h := dashHandler(t, fc, "")
	for range 100 { // a few minutes of samples, taken at once
		h.dash.sampler.sample(context.Background(), time.Now())
	}
	srv := h
	res, err := http.Get(srv.URL + "/api/state")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.True(t, res.Uncompressed, "the client asked for gzip and got it")
	var s stateBody
	require.NoError(t, json.NewDecoder(res.Body).Decode(&s))
	require.Len(t, s.Nodes, 1)
	assert.Len(t, s.Nodes[0].Models, 60)
	assert.Len(t, s.History, 60)
	assert.GreaterOrEqual(t, len(s.History["n1/model-59"]), 99)
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, name, data string }

// sseReader reads server-sent events from a stream.
type sseReader struct {
	t       *testing.T
	sc      *bufio.Scanner
	samples []string // the samples nextEvent skipped
}

func (r *sseReader) next() sseEvent {
	r.t.Helper()
	var ev sseEvent
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				return ev
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	r.t.Fatalf("the event stream ended: %v", r.sc.Err())
	return ev
}

// nextEvent skips samples.
func (r *sseReader) nextEvent() (sseEvent, eventJSON) {
	r.t.Helper()
	for {
		ev := r.next()
		if ev.name != "event" {
			require.Equal(r.t, "sample", ev.name)
			r.samples = append(r.samples, ev.data)
			continue
		}
		var e eventJSON
		require.NoError(r.t, json.Unmarshal([]byte(ev.data), &e), ev.data)
		return ev, e
	}
}

func openEvents(t *testing.T, ctx context.Context, url, lastID string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	return res, &sseReader{t: t, sc: bufio.NewScanner(res.Body)}
}

func breakerEvent(model string, to messages.BreakerState) Event {
	now := time.Now()
	ev := &messages.BreakerTransition{Time: timestamppb.New(now), Node: "n1", Model: model, From: messages.BreakerState_closed, To: to}
	return Event{Kind: "breaker", Node: "n1", Model: model, Time: now, Line: "n1/" + model + " closed -> " + to.String(), Event: ev}
}

// /api/events: the backlog at connect, then live events; a reconnect with
// Last-Event-ID gets only what it missed.
func TestDashboardEventStream(t *testing.T) {
	fc := newFakeCluster(1)
	h := dashHandler(t, fc, "")
	srv := h
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	for i := range 3 {
		fc.send(t, breakerEvent(fmt.Sprintf("m%d", i), messages.BreakerState_open))
	}
	res, r := openEvents(t, ctx, srv.URL, "")
	defer res.Body.Close()
	var ids []string
	for i := range 3 {
		ev, e := r.nextEvent()
		assert.Equal(t, fmt.Sprintf("m%d", i), e.Model, "the backlog in order")
		assert.Equal(t, "breaker", e.Kind)
		assert.Equal(t, uint64(i+1), e.ID)
		assert.Contains(t, string(e.Event), `"to":"open"`, "the event itself, as protojson")
		ids = append(ids, ev.id)
	}
	fc.send(t, breakerEvent("live", messages.BreakerState_closed))
	_, e := r.nextEvent()
	assert.Equal(t, "live", e.Model, "a live event after the backlog")
	assert.Contains(t, string(e.Event), `"to":"closed"`)
	assert.Equal(t, "n1/live closed -> closed", e.Line)

	// The browser reconnects after event 2: it gets 3 and the live one.
	res2, r2 := openEvents(t, ctx, srv.URL, ids[1])
	defer res2.Body.Close()
	_, e = r2.nextEvent()
	assert.Equal(t, "m2", e.Model)
	_, e = r2.nextEvent()
	assert.Equal(t, "live", e.Model)

	// Samples come on the same stream: the first when it opened.
	for len(r.samples) == 0 {
		if ev := r.next(); ev.name == "sample" {
			r.samples = append(r.samples, ev.data)
		}
	}
	var s stateBody
	require.NoError(t, json.Unmarshal([]byte(r.samples[0]), &s))
	require.Len(t, s.Nodes, 1)
	assert.Equal(t, "n1", s.Nodes[0].Node)

	// Close ends the open streams.
	h.Close()
	_, err := io.Copy(io.Discard, res.Body)
	assert.NoError(t, err, "the stream ends cleanly at Close")
}

// The backlog keeps the last 100 events.
func TestDashboardBacklogIsBounded(t *testing.T) {
	h := newEventHub(eventBacklog, clientBuffer)
	for i := range 150 {
		h.event(breakerEvent(fmt.Sprintf("m%d", i), messages.BreakerState_open), time.Now())
	}
	_, backlog := h.subscribe(0)
	require.Len(t, backlog, eventBacklog)
	assert.Equal(t, uint64(51), backlog[0].id)
	assert.Equal(t, uint64(150), backlog[99].id)
}

// A client that does not read is dropped; the others get everything and
// publishing never waits.
func TestDashboardDropsASlowClient(t *testing.T) {
	h := newEventHub(eventBacklog, 4)
	slow, _ := h.subscribe(0)
	fast, _ := h.subscribe(0)
	for i := range 20 {
		h.event(breakerEvent(fmt.Sprintf("m%d", i), messages.BreakerState_open), time.Now())
		select { // the fast client reads each event; the slow one never does
		case m, ok := <-fast.ch:
			require.True(t, ok, "the fast client was dropped at event %d", i+1)
			assert.Equal(t, uint64(i+1), m.id)
		case <-timeout():
			t.Fatalf("event %d did not reach the fast client", i+1)
		}
	}
	var slowGot int
	for range slow.ch { // closed by the eventHub once its buffer was full
		slowGot++
	}
	assert.Equal(t, 4, slowGot, "the slow client got its buffer, then its stream ended")
	h.mu.Lock()
	assert.Equal(t, 1, h.dropped)
	assert.Len(t, h.clients, 1)
	h.mu.Unlock()
	h.unsubscribe(fast)
}

func postAdmin(h http.Handler, command, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/admin/"+command, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// Admin actions need the operator token, checked by the server.
func TestDashboardAdminNeedsTheToken(t *testing.T) {
	body := `{"node":"n1","model":"gpt-5","reason":"provider incident","durationMs":60000}`
	tests := []struct {
		name, serverToken, auth string
		wantStatus              int
		wantError               string
	}{
		{"no token on the server", "", "Bearer anything", http.StatusForbidden, "HIVE_ADMIN_TOKEN"},
		{"no token on the server, none sent", "", "", http.StatusForbidden, "started without an operator token"},
		{"none sent", "s3cret-token", "", http.StatusUnauthorized, "missing or wrong"},
		{"wrong token", "s3cret-token", "Bearer s3cret-tokeN", http.StatusUnauthorized, "missing or wrong"},
		{"a prefix of the token", "s3cret-token", "Bearer s3cret", http.StatusUnauthorized, "missing or wrong"},
		{"not a bearer", "s3cret-token", "Basic s3cret-token", http.StatusUnauthorized, "missing or wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeCluster(1)
			h := dashHandler(t, fc, tt.serverToken)
			rec := postAdmin(h, "breaker_open", tt.auth, body)
			assert.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tt.wantError)
			assert.Empty(t, fc.adminCalls(), "nothing reaches the cluster")
			if tt.wantStatus == http.StatusUnauthorized {
				assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestDashboardAdminRunsTheCommand(t *testing.T) {
	fc := newFakeCluster(1)
	h := dashHandler(t, fc, "s3cret-token")
	rec := postAdmin(h, "breaker_open", "Bearer s3cret-token", `{"node":"n1","model":"gpt-5","reason":"provider incident","durationMs":60000}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out struct {
		Replies []struct {
			Ok      bool   `json:"ok"`
			Node    string `json:"node"`
			Message string `json:"message"`
		} `json:"replies"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	require.Len(t, out.Replies, 1)
	assert.True(t, out.Replies[0].Ok)
	assert.Equal(t, "breaker_open gpt-5: done", out.Replies[0].Message)
	calls := fc.adminCalls()
	require.Len(t, calls, 1)
	assert.Equal(t, "n1", calls[0].node)
	assert.Equal(t, "breaker_open", calls[0].command)
	assert.Equal(t, "dashboard", calls[0].cmd.GetActor(), "the audit trail names the dashboard")
	assert.Equal(t, "gpt-5", calls[0].cmd.GetModel())
	assert.Equal(t, "provider incident", calls[0].cmd.GetReason())
	assert.Equal(t, int32(60000), calls[0].cmd.GetDurationMs())

	rec = postAdmin(h, "alert_ack", "Bearer s3cret-token", `{"alertId":"a1"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	calls = fc.adminCalls()
	assert.Equal(t, "all", calls[1].node, "no node: every node")
	assert.Equal(t, "a1", calls[1].cmd.GetAlertId())

	for _, tt := range []struct {
		name, command, body string
		want                int
	}{
		{"unknown command", "self_destruct", `{}`, http.StatusNotFound},
		{"drain is not a dashboard command", "drain", `{}`, http.StatusNotFound},
		{"unknown field", "breaker_close", `{"model":"gpt-5","colour":"red"}`, http.StatusBadRequest},
		{"not JSON", "breaker_close", `model=gpt-5`, http.StatusBadRequest},
		{"negative duration", "breaker_open", `{"model":"gpt-5","durationMs":-1}`, http.StatusBadRequest},
	} {
		rec := postAdmin(h, tt.command, "Bearer s3cret-token", tt.body)
		assert.Equal(t, tt.want, rec.Code, "%s: %s", tt.name, rec.Body.String())
	}
	assert.Len(t, fc.adminCalls(), 2, "refused requests reach no node")
	assert.Equal(t, http.StatusMethodNotAllowed, getPath(t, h, "/api/admin/breaker_open").Code)
}

// The sampler sleeps while nobody looks and wakes for a page.
func TestDashboardSamplesOnlyWhileSomeoneLooks(t *testing.T) {
	fc := newFakeCluster(1)
	h := dashHandler(t, fc, "")
	require.Never(t, func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return fc.calls > 0
	}, 100*time.Millisecond, 10*time.Millisecond, "no status request before anyone looks")
	rec := getPath(t, h, "/api/state") // waits for the first sample
	require.Equal(t, http.StatusOK, rec.Code)
	fc.mu.Lock()
	assert.Positive(t, fc.calls)
	fc.mu.Unlock()
}

// embeddedState reads the state GET / put into the page.
func embeddedState(t *testing.T, page string) stateBody {
	t.Helper()
	const open = `<script id="hive-state" type="application/json">`
	_, rest, ok := strings.Cut(page, open)
	require.True(t, ok, "no state element in the page")
	body, _, ok := strings.Cut(rest, "</script>")
	require.True(t, ok, "the state element does not end")
	var s stateBody
	require.NoError(t, json.Unmarshal([]byte(body), &s), body)
	return s
}

// GET / carries the state, recent events included, so the page draws it
// before the browser's load event; an event's text cannot end the
// element it is in.
func TestDashboardPageCarriesTheState(t *testing.T) {
	fc := newFakeCluster(2)
	h := dashHandler(t, fc, "")
	fc.send(t, breakerEvent("gpt-5", messages.BreakerState_open))
	hostile := breakerEvent("model-01", messages.BreakerState_open)
	hostile.Line = `</script><script>alert("owned")</script>`
	fc.send(t, hostile)

	rec := getPath(t, h, "/")
	require.Equal(t, http.StatusOK, rec.Code)
	page := rec.Body.String()
	assert.NotContains(t, page, `<script>alert`, "an event's text ended the state element")
	s := embeddedState(t, page)
	assert.Equal(t, "n1", s.Node)
	require.Len(t, s.Nodes, 1, "the page of a node nobody looked at waited for the first sample")
	assert.Len(t, s.Nodes[0].Models, 2)
	require.Len(t, s.Events, 2)
	assert.Equal(t, "gpt-5", s.Events[0].Model, "the backlog, oldest first")
	assert.Equal(t, hostile.Line, s.Events[1].Line, "the text itself, escaped")
	assert.Equal(t, s.Events[1].Stream+"-2", s.LastEventID)

	api := getPath(t, h, "/api/state")
	require.Equal(t, http.StatusOK, api.Code)
	var a stateBody
	require.NoError(t, json.Unmarshal(api.Body.Bytes(), &a))
	assert.Len(t, a.Events, 2, "/api/state has the same events")
	assert.Equal(t, s.LastEventID, a.LastEventID)
}

// With no sample in time (no node answers), the page comes without a state,
// and its script asks /api/state.
func TestDashboardPageWithoutAState(t *testing.T) {
	h := dashHandler(t, silentCluster{}, "")
	h.dash.cancel() // the sampler stops: no sample will come
	rec := getPath(t, h, "/")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), stateElement, "the empty state element, as index.html has it")
}

// silentCluster never answers a status request.
type silentCluster struct{}

func (silentCluster) Status(ctx context.Context) ([]*messages.NodeStatus, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (silentCluster) Events(ctx context.Context, fn func(Event)) error { <-ctx.Done(); return nil }
func (silentCluster) Admin(context.Context, string, string, *messages.AdminCommand) ([]*messages.AdminReply, error) {
	return nil, nil
}

// A stream the page opens itself (an EventSource cannot set Last-Event-ID)
// goes on after ?lastEventId=, and starts with the latest sample, so a page
// that was away is current at once.
func TestDashboardStreamGoesOnFromTheState(t *testing.T) {
	fc := newFakeCluster(1)
	h := dashHandler(t, fc, "")
	srv := h
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for i := range 3 {
		fc.send(t, breakerEvent(fmt.Sprintf("m%d", i), messages.BreakerState_open))
	}
	s := embeddedState(t, getPath(t, h, "/").Body.String())
	require.Len(t, s.Events, 3)
	fc.send(t, breakerEvent("after", messages.BreakerState_open))

	res, err := http.Get(srv.URL + "/api/events?lastEventId=" + s.LastEventID)
	require.NoError(t, err)
	defer res.Body.Close()
	r := &sseReader{t: t, sc: bufio.NewScanner(res.Body)}
	_, e := r.nextEvent()
	assert.Equal(t, "after", e.Model, "the first event after the state's")
	require.NotEmpty(t, r.samples, "the latest sample came before the live events")
	var sample stateBody
	require.NoError(t, json.Unmarshal([]byte(r.samples[0]), &sample))
	assert.Equal(t, s.SampledAt, sample.SampledAt, "the sample the state had: the latest")

	// The header wins over the parameter (the browser's own reconnect sends both).
	res2, r2 := openEvents(t, ctx, srv.URL+"/api/events?lastEventId="+s.LastEventID+"&x=", s.Events[1].Stream+"-1")
	defer res2.Body.Close()
	_, e = r2.nextEvent()
	assert.Equal(t, "m1", e.Model)
}
