package gateway

import (
	"net/http"
	"time"
)

// Timeouts of the node's HTTP server (see Server). Each bounds what a slow
// or stalled client can hold: a connection, a goroutine, a buffer.
const (
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included. It does
	// not cut a longer answer: net/http lifts the read deadline once the
	// body is read (TestAnswersOutliveTheReadTimeout keeps it so).
	ReadTimeout = 30 * time.Second
	// WriteTimeout bounds writing one non-streamed answer, counted from
	// when it is ready (a completion waits for its model first), and each
	// write of a stream, so a client that stops reading is dropped.
	WriteTimeout = 30 * time.Second
	// IdleTimeout bounds a keep-alive connection between requests.
	IdleTimeout = 2 * time.Minute
)

// Server returns an http.Server for h with the timeouts above.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		// No server-wide WriteTimeout: it would count from the request's
		// arrival and cut every completion slower than it. deadlines sets
		// a write deadline per answer instead.
	}
}

// deadlines wraps the node's routes: every answer but the dashboard's
// event stream gets a write deadline of WriteTimeout, which chat moves to
// when its answer is ready, and which each event of a streamed completion
// moves again.
func deadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/events" {
			writeFor(w, WriteTimeout)
		}
		h.ServeHTTP(w, r)
	})
}

// writeFor gives the next writes d, counted from now. A writer without
// deadlines (a test's recorder) is left as it is.
func writeFor(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
