package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/cmmv-hive/resilience/messages"
)

// DefaultMaxBody is the request body limit when Config.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// Dispatcher is the node's request path (actors.Hive implements it).
type Dispatcher interface {
	// Dispatch answers a request through sink (see messages.Sink): the
	// pieces of a streamed answer, then one Final with the reply. The
	// gateway's sink never blocks, so it may be called from inside an
	// actor, and from any goroutine.
	Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink)
}

// Config is what New needs. Node, Dispatcher and Readiness are required.
type Config struct {
	// Node names this node in X-Hive-Node and in /healthz and /readyz.
	Node string
	// Dispatcher answers chat completions.
	Dispatcher Dispatcher
	// Models lists the configured model names for /v1/models. Nil lists none.
	Models func() []string
	// Readiness answers /readyz.
	Readiness Readiness
	// MaxBody limits a request body in bytes; a larger one gets 413. Zero
	// means DefaultMaxBody (1 MiB).
	MaxBody int64
	// Logger receives one debug line per chat completion (request id, model,
	// served_by, status); the zero value logs nothing. Request headers,
	// Authorization among them, and message contents are never logged.
	Logger zerolog.Logger
	// Metrics, when not nil, is served at GET /metrics and records every
	// chat completion the dispatcher answers as an "http" response (time
	// from dispatch to answer; requests refused before dispatch are not
	// counted). Nil means no /metrics route.
	Metrics *Metrics
	// Cluster, when not nil, is read and acted on by the dashboard: GET /,
	// /assets/, /api/state, /api/events and POST /api/admin/{command}
	// (dashboard.go). Nil means no dashboard routes (404).
	Cluster Cluster
	// Jobs, when not nil, serves POST /v1/hive/jobs and
	// GET /v1/hive/jobs/{id} (jobs.go). Nil means no job routes (404).
	Jobs Jobs
	// AdminToken is the operator token that POST /api/admin/{command}
	// requires as "Authorization: Bearer <token>". Empty refuses every
	// admin action with 403. It is never logged nor put into a page.
	AdminToken string
}

var (
	// ErrNoDispatcher is returned by New when Config.Dispatcher is nil.
	ErrNoDispatcher = errors.New("gateway: Config.Dispatcher is required")
	// ErrNoReadiness is returned by New when Config.Readiness is nil.
	ErrNoReadiness = errors.New("gateway: Config.Readiness is required")
	// ErrNoNode is returned by New when Config.Node is empty.
	ErrNoNode = errors.New("gateway: Config.Node is required")
	// ErrMaxBody is returned by New when Config.MaxBody is negative.
	ErrMaxBody = errors.New("gateway: Config.MaxBody must be >= 0")
)

// Handler is the node's HTTP handler, built by New, served by Server.
// Close stops the dashboard's background work.
type Handler struct {
	g    *gateway
	root http.Handler            // the net/http mux behind deadlines
	rest fasthttp.RequestHandler // root through fasthttpadaptor
	dash *dashboard              // nil without Config.Cluster
}

// Serve is the fasthttp.RequestHandler: chat completions, the hot path,
// on fasthttp itself (chat.go, stream.go); every other route on the
// net/http mux, through fasthttpadaptor (which buffers the body and runs
// the handler on a goroutine of its own; the dashboard's event stream is
// flushed through it as net/http would).
func (h *Handler) Serve(rc *fasthttp.RequestCtx) {
	if string(rc.Path()) == chatPath {
		h.g.chat(rc)
		return
	}
	h.rest(rc)
}

// Close stops the dashboard's event hub and sampler and waits for them;
// open event streams end, and new ones get 503. Call it before the HTTP
// server's Shutdown, which would otherwise wait for the streams. Without a
// Cluster it does nothing.
func (h *Handler) Close() {
	if h.dash != nil {
		h.dash.close()
	}
}

// gateway holds the validated configuration; it has no mutable state.
type gateway struct {
	node       string
	dispatcher Dispatcher
	models     func() []string
	maxBody    int64
	log        zerolog.Logger
	started    int64 // unix seconds, the "created" of every listed model
	jobs       Jobs  // nil: no job routes
}

// New returns the node's HTTP handler (serve it with Server): POST
// /v1/chat/completions,
// GET /v1/models, GET /v1/models/{model}, Health's /healthz and /readyz,
// GET /metrics when c.Metrics is set, and the dashboard when c.Cluster is
// set (its goroutines start here; Close stops them). Any other path under
// /v1/ gets an OpenAI-shaped 404, and a wrong method an OpenAI-shaped 405
// with Allow. It fails when a required field of c is missing or MaxBody
// is negative.
func New(c Config) (*Handler, error) {
	switch {
	case c.Node == "":
		return nil, ErrNoNode
	case c.Dispatcher == nil:
		return nil, ErrNoDispatcher
	case c.Readiness == nil:
		return nil, ErrNoReadiness
	case c.MaxBody < 0:
		return nil, ErrMaxBody
	}
	g := &gateway{
		node:       c.Node,
		dispatcher: c.Dispatcher,
		models:     c.Models,
		maxBody:    c.MaxBody,
		log:        c.Logger,
		started:    time.Now().Unix(),
		jobs:       c.Jobs,
	}
	if g.maxBody == 0 {
		g.maxBody = DefaultMaxBody
	}
	if g.models == nil {
		g.models = func() []string { return nil }
	}
	if c.Metrics != nil {
		g.dispatcher = c.Metrics.Wrap("http", c.Dispatcher)
	}
	health := Health(c.Node, c.Readiness)
	mux := http.NewServeMux()
	mux.Handle("/healthz", health)
	mux.Handle("/readyz", health)
	if c.Metrics != nil {
		mux.Handle("GET /metrics", c.Metrics.Handler())
	}
	mux.Handle("/v1/models", only(http.MethodGet, g.listModels))
	mux.Handle("/v1/models/{model}", only(http.MethodGet, g.getModel))
	if g.jobs != nil {
		mux.Handle(jobsPath, only(http.MethodPost, g.submitJob))
		mux.Handle(jobsPath+"/{id}", only(http.MethodGet, g.getJob))
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, &messages.Error{
			Class: messages.ErrorClass_bad_request, Code: "not_found", Message: "no such route",
		})
	})
	h := &Handler{g: g, root: deadlines(mux)}
	h.rest = fasthttpadaptor.NewFastHTTPHandler(h.root)
	if c.Cluster != nil {
		h.dash = newDashboard(c.Node, c.Cluster, c.AdminToken, c.Logger)
		h.dash.routes(mux)
	}
	return h, nil
}

// only answers other methods than method with an OpenAI-shaped 405. The
// mux's own 405 is plain text, which OpenAI clients cannot parse.
func only(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, &messages.Error{
				Class: messages.ErrorClass_bad_request, Code: "method_not_allowed",
				Message: "method not allowed; use " + method,
			})
			return
		}
		h(w, r)
	})
}
