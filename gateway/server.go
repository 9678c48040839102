package gateway

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cmmv-hive/resilience/messages"
)

// Timeouts of the node's HTTP server (see Server). Each bounds what a slow
// or stalled client can hold: a connection, a goroutine, a buffer.
const (
	// ReadTimeout bounds reading a whole request, headers and body, from
	// its first byte. It does not cut a longer answer: the answer is
	// written under WriteTimeout (TestAnswersOutliveTheReadTimeout keeps
	// it so).
	ReadTimeout = 30 * time.Second
	// WriteTimeout bounds writing one non-streamed answer, counted from
	// when it is ready (a completion waits for its model first), and each
	// write of a stream, so a client that stops reading is dropped.
	WriteTimeout = 30 * time.Second
	// IdleTimeout bounds a keep-alive connection between requests.
	IdleTimeout = 2 * time.Minute
)

// Server returns the fasthttp server for h with the timeouts above and
// h's body limit (Config.MaxBody): a larger body is refused with 413
// before the handler runs, in OpenAI's error shape.
func Server(h *Handler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            h.Serve,
		ErrorHandler:       h.g.serverError,
		Name:               "hive",
		ReadTimeout:        ReadTimeout,
		WriteTimeout:       WriteTimeout,
		IdleTimeout:        IdleTimeout,
		MaxRequestBodySize: int(h.g.maxBody),
		CloseOnShutdown:    true,
		// A streamed answer is flushed event by event; nothing else needs
		// more than the default buffers.
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		Logger:                       quiet{},
	}
}

// quiet drops fasthttp's own log lines (a client that closed its
// connection, a malformed request): they may quote what a client sent.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// serverError answers a request that fasthttp could not read: its body
// over the limit (413), not sent within ReadTimeout (400, invalid_body)
// or malformed (400, invalid_request), in OpenAI's
// error shape.
func (g *gateway) serverError(rc *fasthttp.RequestCtx, err error) {
	if string(rc.Path()) == chatPath {
		rc.Response.Header.Set(headerNode, g.node)
	}
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e := tooLarge(g.maxBody)
		fastError(rc, e.status, e.err, "")
		rc.SetConnectionClose()
		answerAndDrain(rc)
		return
	case isTimeout(err): // the client stopped sending
		fastError(rc, http.StatusBadRequest, messages.Failure(messages.ErrorClass_bad_request, "invalid_body",
			"the body could not be read"), "")
	default:
		fastError(rc, http.StatusBadRequest, messages.Failure(messages.ErrorClass_bad_request, "invalid_request",
			"the request could not be parsed"), "")
	}
	rc.SetConnectionClose()
}

// Bounds of the drain after a 413.
const (
	maxDrain    = 16 << 20
	drainWithin = 2 * time.Second
)

// answerAndDrain writes rc's answer on the connection now, then reads and
// drops the rest of the body, at most maxDrain bytes within drainWithin,
// before fasthttp closes the connection. Closing with the body unread
// would make the kernel reset the connection, and a client still sending
// could lose the 413 with it. The write fasthttp then makes of the same
// answer is made to fail at once (its deadline has passed), so the client
// gets one answer.
func answerAndDrain(rc *fasthttp.RequestCtx) {
	conn := rc.Conn()
	if conn == nil {
		return
	}
	bw := bufio.NewWriterSize(conn, 1024)
	_ = conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if rc.Response.Write(bw) != nil || bw.Flush() != nil {
		return
	}
	left := int64(maxDrain)
	if n := rc.Request.Header.ContentLength(); n >= 0 {
		left = min(int64(n), left)
	}
	_ = conn.SetReadDeadline(time.Now().Add(drainWithin))
	_, _ = io.CopyN(io.Discard, conn, left)
	_ = conn.SetWriteDeadline(past)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// deadlines wraps the net/http routes: every answer gets a write deadline
// of WriteTimeout, but the dashboard's event stream, which has none.
func deadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/events" {
			writeFor(w, WriteTimeout)
		} else {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}

// writeFor gives the next writes d, counted from now. A writer without
// deadlines (a test's recorder) is left as it is.
func writeFor(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
