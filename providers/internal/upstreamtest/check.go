package upstreamtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// StreamEnd is one way for an upstream's stream to end, and what the
// caller must be told.
type StreamEnd struct {
	Name     string                                    // the subtest's name
	Script   func(t *testing.T, w http.ResponseWriter) // the upstream's answer
	WantText string                                    // the text read before the end
	Want     messages.ErrorClass                       // ok: a complete answer (io.EOF)
}

// CheckStreamEnd streams Hello from an upstream scripted by tt.Script, and
// checks the text read and how the stream ended.
func CheckStreamEnd[M providers.Streamer](t *testing.T, serve Serve[M], tt StreamEnd) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) { tt.Script(t, w) })
	text, _, err := Collect(Open(t, m))
	wantEnd(t, text, err, tt.WantText, tt.Want)
}

// Deadline is a stream under providers.WithDeadlines, and what the caller
// must be told.
type Deadline struct {
	Name     string                    // the subtest's name
	D        providers.StreamDeadlines // the deadlines the stream runs under
	Script   Handler                   // the upstream's answer
	WantText string                    // the text read before the end
	Want     messages.ErrorClass       // ok: a complete answer (io.EOF)
}

// CheckDeadline streams Hello under tt.D from an upstream scripted by
// tt.Script, and checks the text read and how the stream ended (or failed
// to open).
func CheckDeadline[M providers.Streamer](t *testing.T, serve Serve[M], tt Deadline) {
	t.Helper()
	m, _ := serve(t, tt.Script)
	s, err := providers.WithDeadlines(Bounded(t), tt.D, func(ctx context.Context) (providers.Stream, error) {
		return m.Stream(ctx, Hello)
	})
	var text string
	if err == nil {
		defer s.Close()
		text, _, err = Collect(s)
	}
	wantEnd(t, text, err, tt.WantText, tt.Want)
}

// wantEnd checks the text a stream gave and its end: io.EOF when want is
// ok, otherwise a *providers.Error of class want.
func wantEnd(t *testing.T, text string, err error, wantText string, want messages.ErrorClass) {
	t.Helper()
	assert.Equal(t, wantText, text)
	if want == messages.ErrorClass_ok {
		assert.ErrorIs(t, err, io.EOF, "want a complete answer")
		return
	}
	assert.Equal(t, want, Class(t, err), "%v", err)
}

// CheckFinalisedAtOnce checks that once the upstream has sent lines, which
// end the answer without the stream's last event, the stream is complete
// with wantText and a usage, although the upstream holds the connection
// open.
func CheckFinalisedAtOnce[M providers.Streamer](t *testing.T, serve Serve[M], wantText string, lines ...string) {
	t.Helper()
	handlerDone := make(chan struct{})
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) {
		defer close(handlerDone)
		Events(w, lines...)
		u.Hang(r)
	})
	text, usage, err := Collect(Open(t, m))
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, wantText, text)
	assert.NotNil(t, usage)
	select {
	case <-handlerDone:
		t.Fatal("the stream waited for the upstream to give up")
	default:
	}
}

// CheckReusesConnections checks that three streams that end complete,
// each answered with lines, use one connection: Close hands it back to the
// pool.
func CheckReusesConnections[M providers.Streamer](t *testing.T, serve Serve[M], lines ...string) {
	t.Helper()
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) { Events(w, lines...) })
	for range 3 {
		s, err := m.Stream(Bounded(t), Hello)
		require.NoError(t, err)
		_, _, err = Collect(s)
		assert.ErrorIs(t, err, io.EOF)
		require.NoError(t, s.Close())
	}
	assert.Equal(t, int32(1), u.Conns.Load(), "three streams, one connection")
}

// CheckNotAnEventStream checks that a stream answered with a JSON body
// (a plain answer) fails to open as malformed.
func CheckNotAnEventStream[M providers.Streamer](t *testing.T, serve Serve[M], body string) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})
	_, err := m.Stream(Bounded(t), Hello)
	assert.Equal(t, messages.ErrorClass_malformed, Class(t, err))
}

// CheckCloseEndsRecv checks that Close ends a Recv in progress
// (cancelled) while the upstream, having sent lines, whose text is first,
// holds the stream open.
func CheckCloseEndsRecv[M providers.Streamer](t *testing.T, serve Serve[M], first string, lines ...string) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) {
		Events(w, lines...)
		u.Hang(r)
	})
	s, err := m.Stream(Bounded(t), Hello)
	require.NoError(t, err)
	c, err := s.Recv()
	require.NoError(t, err)
	assert.Equal(t, first, c.Delta)
	ended := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		ended <- err
	}()
	require.NoError(t, s.Close())
	select {
	case err := <-ended:
		assert.Equal(t, messages.ErrorClass_cancelled, Class(t, err))
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a Recv in progress")
	}
}

// Status is a non-2xx answer, and the class it must get.
type Status struct {
	Status     int                 // the HTTP status
	Header     map[string]string   // headers sent with it
	Body       string              // the body sent with it
	Want       messages.ErrorClass // the class Complete and Stream must fail with
	RetryAfter time.Duration       // lower bound; 0 means none
}

// CheckStatus checks that Complete and Stream, answered with tt, both fail
// with tt.Want, the status and the Retry-After (at least tt.RetryAfter, at
// most 15 s more).
func CheckStatus[M providers.Streamer](t *testing.T, serve Serve[M], tt Status) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) {
		for k, v := range tt.Header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(tt.Status)
		w.Write([]byte(tt.Body))
	})
	for _, call := range []string{"complete", "stream"} {
		var err error
		if call == "complete" {
			_, err = m.Complete(Bounded(t), Hello)
		} else {
			_, err = m.Stream(Bounded(t), Hello)
		}
		require.Equal(t, tt.Want, Class(t, err), "%s: %v", call, err)
		pe := providers.Classify(err)
		assert.Equal(t, tt.Status, pe.StatusCode)
		if tt.RetryAfter > 0 {
			assert.GreaterOrEqual(t, pe.RetryAfter, tt.RetryAfter, "Retry-After")
			assert.LessOrEqual(t, pe.RetryAfter, tt.RetryAfter+15*time.Second, "Retry-After")
		} else {
			assert.Zero(t, pe.RetryAfter)
		}
	}
}

// CheckAnswerFails checks that Complete, answered 200 with body, fails
// with want.
func CheckAnswerFails[M providers.Streamer](t *testing.T, serve Serve[M], body string, want messages.ErrorClass) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) { w.Write([]byte(body)) })
	_, err := m.Complete(Bounded(t), Hello)
	assert.Equal(t, want, Class(t, err), "%v", err)
}

// CheckConnectionRefused checks that Complete and Stream fail as
// connection, Complete's error naming the refusal, when nothing listens at
// the API root. model is the backend's, as for ServeWith.
func CheckConnectionRefused[M providers.Streamer](t *testing.T, model func(baseURL string, client *http.Client) (M, error)) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	m, err := model("http://"+addr+"/v1", nil)
	require.NoError(t, err)
	_, err = m.Complete(Bounded(t), Hello)
	assert.Equal(t, messages.ErrorClass_connection, Class(t, err), "%v", err)
	assert.Contains(t, err.Error(), "refused")
	_, err = m.Stream(Bounded(t), Hello)
	assert.Equal(t, messages.ErrorClass_connection, Class(t, err), "%v", err)
}

// CheckConnectionReset checks that Complete and Stream fail as connection
// when the upstream resets the connection before answering.
func CheckConnectionReset[M providers.Streamer](t *testing.T, serve Serve[M]) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) { Cut(t, w) })
	_, err := m.Complete(Bounded(t), Hello)
	assert.Equal(t, messages.ErrorClass_connection, Class(t, err), "%v", err)
	_, err = m.Stream(Bounded(t), Hello)
	assert.Equal(t, messages.ErrorClass_connection, Class(t, err), "%v", err)
}

// CheckHangIsTimeout checks that Complete fails as timeout when the
// upstream never answers and the caller's deadline passes.
func CheckHangIsTimeout[M providers.Streamer](t *testing.T, serve Serve[M]) {
	t.Helper()
	m, _ := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) { u.Hang(r) })
	ctx, cancel := context.WithTimeout(Bounded(t), 50*time.Millisecond)
	defer cancel()
	_, err := m.Complete(ctx, Hello)
	assert.Equal(t, messages.ErrorClass_timeout, Class(t, err), "%v", err)
}

// CheckAnswersReuseConnections checks that three plain answers use one
// connection, and that a connection the upstream closed while it was idle
// is not used again: the call after it dials a new one and succeeds.
func CheckAnswersReuseConnections[M providers.Streamer](t *testing.T, serve Serve[M], body string) {
	t.Helper()
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})
	for range 3 {
		_, err := m.Complete(Bounded(t), Hello)
		require.NoError(t, err)
		<-u.Got
	}
	assert.Equal(t, int32(1), u.Conns.Load(), "three answers, one connection")
	u.CloseClientConnections() // the upstream drops its idle connections
	_, err := m.Complete(Bounded(t), Hello)
	require.NoError(t, err, "a connection closed while idle is not reused")
	assert.Equal(t, int32(2), u.Conns.Load())
}

// CheckCancelEndsTheCall checks that cancelling the caller's context while
// the upstream is still working ends Complete as cancelled and closes the
// upstream's connection, so the upstream sees its caller go away.
func CheckCancelEndsTheCall[M providers.Streamer](t *testing.T, serve Serve[M]) {
	t.Helper()
	gone := make(chan struct{})
	m, u := serve(t, func(w http.ResponseWriter, r *http.Request, u *Server) {
		<-r.Context().Done() // net/http ends it when the connection closes
		close(gone)
	})
	ctx, cancel := context.WithCancel(Bounded(t))
	ended := make(chan error, 1)
	go func() {
		_, err := m.Complete(ctx, Hello)
		ended <- err
	}()
	<-u.Got // the upstream has the request
	cancel()
	select {
	case err := <-ended:
		assert.Equal(t, messages.ErrorClass_cancelled, Class(t, err), "%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling did not end Complete")
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream did not see the call go away")
	}
}
