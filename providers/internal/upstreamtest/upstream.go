package upstreamtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/providers"
)

// Server is a scripted upstream API on loopback: an httptest.Server whose
// handler records each request, then runs the Handler.
type Server struct {
	*httptest.Server
	// Got receives every request, before its Handler runs (16 are
	// buffered); the request's body is on Bodies.
	Got chan *http.Request
	// Bodies receives the body of every request, read whole.
	Bodies chan []byte
	// Conns counts the connections accepted.
	Conns atomic.Int32

	release chan struct{} // closed at cleanup: Hang returns
}

// Handler scripts a Server's answer to one request.
type Handler func(w http.ResponseWriter, r *http.Request, u *Server)

// Start starts a Server answering with h; it is shut down at the test's
// cleanup, after every Hang has returned.
func Start(t *testing.T, h Handler) *Server {
	t.Helper()
	u := &Server{release: make(chan struct{}), Got: make(chan *http.Request, 16), Bodies: make(chan []byte, 16)}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.Got <- r
		u.Bodies <- body
		h(w, r, u)
	}))
	u.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			u.Conns.Add(1)
		}
	}
	u.Server.Start()
	t.Cleanup(u.Close)
	t.Cleanup(func() { close(u.release) })
	return u
}

// Serve is a backend's test helper: it starts a Server answering with h
// and returns the backend's model over it.
type Serve[M providers.Streamer] = func(t *testing.T, h Handler) (M, *Server)

// ServeWith returns the Serve of a backend whose model is built by model:
// at baseURL (an API root, the Server's URL and /v1), sending APIKey
// through client.
func ServeWith[M providers.Streamer](model func(baseURL string, client *http.Client) (M, error)) Serve[M] {
	return func(t *testing.T, h Handler) (M, *Server) {
		t.Helper()
		u := Start(t, h)
		m, err := model(u.URL+"/v1", nil) // the endpoint's own pool, as the node uses
		require.NoError(t, err)
		return m, u
	}
}

// Hang blocks until the client goes away or the test ends: an upstream
// that never answers, or never finishes its answer.
func (u *Server) Hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-u.release:
	}
}

// Request returns the next request the Server got and its JSON body,
// failing the test when the body is not a JSON object.
func (u *Server) Request(t *testing.T) (*http.Request, map[string]any) {
	t.Helper()
	r := <-u.Got
	var body map[string]any
	require.NoError(t, json.Unmarshal(<-u.Bodies, &body))
	return r, body
}

// Events writes server-sent event lines, flushing after each, as a real
// upstream does. The Content-Type is text/event-stream unless the script
// set another.
func Events(w http.ResponseWriter, lines ...string) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	for _, l := range lines {
		fmt.Fprint(w, l)
		w.(http.Flusher).Flush()
	}
}

// Cut hijacks the connection and resets it: the client sees the connection
// break, before the headers or in the middle of a chunked body.
func Cut(t *testing.T, w http.ResponseWriter) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, not a polite close
	}
	conn.Close()
}
