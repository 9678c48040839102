package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/cmmv-hive/resilience/messages"
)

// chatPath is the one route the gateway serves on fasthttp itself; every
// other goes through the net/http mux (Handler.Serve).
const chatPath = "/v1/chat/completions"

// chat serves POST /v1/chat/completions: it decodes the request, hands it
// to the dispatcher with a context that the client's going away cancels
// (watch.go), and writes what comes back.
func (g *gateway) chat(rc *fasthttp.RequestCtx) {
	if !rc.IsPost() {
		rc.Response.Header.Set("Allow", http.MethodPost)
		fastError(rc, http.StatusMethodNotAllowed, &messages.Error{
			Class: messages.ErrorClass_bad_request, Code: "method_not_allowed", Message: "method not allowed; use POST",
		}, "")
		return
	}
	h := &rc.Response.Header
	h.Set(headerNode, g.node)
	get := func(name string) string { return string(rc.Request.Header.Peek(name)) }
	c, e := decode(get, rc.PostBody())
	if e != nil {
		if id := get(headerRequestID); printable(id) {
			h.Set(headerRequestID, id)
		}
		fastError(rc, e.status, e.err, e.param)
		g.logged(nil, "", e.status)
		return
	}
	h.Set(headerRequestID, c.req.GetRequestId())
	ctx, cancel := context.WithCancel(context.Background())
	if c.req.GetStream() {
		g.stream(rc, ctx, cancel, c)
		return
	}
	defer cancel()
	a := newInbox()
	defer a.close()
	g.dispatcher.Dispatch(ctx, c.req, a)
	w := watch(rc.Conn(), cancel)
	defer w.stop()
	for {
		select {
		case <-a.ready:
		case <-ctx.Done(): // the client went away; there is no one to answer
			rc.SetConnectionClose()
			g.logged(c, "", messages.ErrorClass_cancelled.Status())
			return
		}
		if _, resp, ended := a.take(); ended { // a plain request has no pieces
			// The server's WriteTimeout counts from the answer, not from the request.
			g.logged(c, resp.GetServedBy(), g.reply(rc, c, resp))
			return
		}
	}
}

// logged writes the request's one debug line. Headers and bodies are not
// logged: they may hold keys and private text.
func (g *gateway) logged(c *call, servedBy string, status int) {
	ev := g.log.Debug()
	if ev == nil {
		return
	}
	if c != nil {
		ev = ev.Str("request_id", c.req.GetRequestId()).Str("model", c.req.GetModel()).Bool("stream", c.req.GetStream())
	}
	ev.Str("path", chatPath).Str("served_by", servedBy).Int("status", status).Msg("chat completion")
}

// fastJSON answers with status and v as JSON.
func fastJSON(rc *fasthttp.RequestCtx, status int, v any) {
	rc.SetContentType("application/json")
	rc.SetStatusCode(status)
	_ = json.NewEncoder(rc).Encode(v)
}

// fastError is writeErrorParam on fasthttp.
func fastError(rc *fasthttp.RequestCtx, status int, e *messages.Error, param string) {
	if ms := e.GetRetryAfterMs(); ms > 0 {
		rc.Response.Header.Set(headerRetryAfter, strconv.Itoa(int((int64(ms)+999)/1000)))
		rc.Response.Header.Set(headerRetryAfterMs, strconv.Itoa(int(ms)))
	}
	fastJSON(rc, status, toErrorBody(e, param))
}

// now is the "created" of a completion, in Unix seconds.
func now() int64 { return time.Now().Unix() }
