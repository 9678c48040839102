package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// chat serves POST /v1/chat/completions: it decodes the request, hands it
// to the dispatcher with the request's context (a client that goes away
// cancels it), and writes what comes back.
func (g *gateway) chat(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set(headerNode, g.node)
	c, e := decode(w, r, g.maxBody)
	if e != nil {
		if id := r.Header.Get(headerRequestID); printable(id) {
			h.Set(headerRequestID, id)
		}
		writeErrorParam(w, e.status, e.err, e.param)
		g.logged(r, nil, "", e.status)
		return
	}
	h.Set(headerRequestID, c.req.GetRequestId())
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel() // a stream abandoned on a failed write stops its dispatch
	if c.req.GetStream() {
		servedBy, status := g.stream(ctx, w, c)
		g.logged(r, c, servedBy, status)
		return
	}
	a := newInbox()
	defer a.close()
	g.dispatcher.Dispatch(ctx, c.req, a)
	for {
		select {
		case <-a.ready:
		case <-ctx.Done(): // the client went away; there is no one to answer
			g.logged(r, c, "", messages.ErrorClass_cancelled.Status())
			return
		}
		if _, resp, ended := a.take(); ended { // a plain request has no pieces
			writeFor(w, WriteTimeout) // counted from the answer, not from the request
			g.logged(r, c, resp.GetServedBy(), g.reply(w, c, resp))
			return
		}
	}
}

// logged writes the request's one debug line. Headers and bodies are not
// logged: they may hold keys and private text.
func (g *gateway) logged(r *http.Request, c *call, servedBy string, status int) {
	ev := g.log.Debug()
	if ev == nil {
		return
	}
	if c != nil {
		ev = ev.Str("request_id", c.req.GetRequestId()).Str("model", c.req.GetModel()).Bool("stream", c.req.GetStream())
	}
	ev.Str("path", r.URL.Path).Str("served_by", servedBy).Int("status", status).Msg("chat completion")
}

// now is the "created" of a completion, in Unix seconds.
func now() int64 { return time.Now().Unix() }
