package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// The dashboard: one page that shows the whole deployment, read over NATS
// through a Cluster, so any node shows every node. The page is static
// (static/, embedded, no build step, nothing loaded from elsewhere) but for
// the state, which GET / puts into it: the script draws every node, model
// and recent event before the browser's load event (so the first paint and
// a headless screenshot show them), then follows /api/events from the last
// event the page had.
//
// Two goroutines per node do the work, whatever the number of viewers: the
// hub (dashboard_hub.go) holds one Cluster.Events subscription and fans it
// out to the event streams; the sampler (dashboard_sampler.go) polls
// Cluster.Status while someone looks and keeps the charts' history.

// Cluster is what the dashboard reads and acts on: the whole deployment
// over NATS, not only this node. The node package implements it over the
// admin and event subjects.
type Cluster interface {
	// Status returns every node's status; an error when none answered.
	Status(ctx context.Context) ([]*messages.NodeStatus, error)
	// Events calls fn with every live event of every node, on one
	// goroutine, until ctx ends; then it returns nil.
	Events(ctx context.Context, fn func(Event)) error
	// Admin sends an admin command to node ("all": every node) and returns
	// the replies; a refused command is a reply with its error set.
	Admin(ctx context.Context, node, command string, cmd *messages.AdminCommand) ([]*messages.AdminReply, error)
}

// Event is one event of the deployment, as the dashboard lists it.
type Event struct {
	Kind        string // health, breaker, recovery, alert or admin
	Node, Model string // "" when the event has none
	Line        string // the event as one readable line
	Time        time.Time
	Event       proto.Message // the decoded event; nil when it did not decode
}

//go:embed static
var staticFiles embed.FS

// adminActor is who the audit trail names for the dashboard's commands.
const adminActor = "dashboard"

// pageCSP keeps the page to what this node serves: no CDN, no external
// fonts, no inline script.
const pageCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// pageJSON writes messages for the page: every field present, so that the
// script needs no defaults.
var pageJSON = protojson.MarshalOptions{EmitUnpopulated: true}

// dashboard serves the page and its API. Its goroutines run from
// newDashboard until close.
type dashboard struct {
	node    string
	cluster Cluster
	token   string
	log     zerolog.Logger
	hub     *eventHub
	sampler *sampler
	lockout *lockout // failed operator tokens per client address

	ctx    context.Context // ends at close; event streams end with it
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newDashboard(node string, c Cluster, token string, log zerolog.Logger) *dashboard {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dashboard{node: node, cluster: c, token: token, log: log, ctx: ctx, cancel: cancel, lockout: newLockout(nil)}
	d.hub = newEventHub(eventBacklog, clientBuffer)
	d.sampler = newSampler(c, d.hub, sampleInterval, historyWindow, log)
	d.wg.Go(func() { d.hub.run(ctx, c, log) })
	d.wg.Go(func() { d.sampler.run(ctx) })
	return d
}

func (d *dashboard) close() {
	d.cancel()
	d.wg.Wait()
}

func (d *dashboard) routes(mux *http.ServeMux) {
	assets, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(assets)
	mux.HandleFunc("GET /{$}", d.page)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", noCache(files)))
	mux.HandleFunc("GET /api/state", d.state)
	mux.HandleFunc("GET /api/events", d.events)
	mux.HandleFunc("POST /api/admin/{command}", d.admin)
}

// stateElement is the element of index.html that takes the state: a
// <script type="application/json">, which the browser never runs, so the
// CSP's script-src 'self' holds. encoding/json escapes <, > and &, so no
// state ends that element early. Left as it is (null), the page's script
// asks /api/state.
const stateElement = `<script id="hive-state" type="application/json">null</script>`

// page serves index.html with the current state in it (the body of GET
// /api/state), and headers that keep it self-contained. On a node nobody
// looked at, that waits for the first sample (one status round, about
// clusterGather); when none comes in time, the page goes without, and its
// script asks /api/state until one does.
func (d *dashboard) page(w http.ResponseWriter, r *http.Request) {
	body, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if st := d.current(r.Context()); st != nil {
		if b, err := json.Marshal(st); err == nil {
			filled := strings.Replace(stateElement, ">null<", ">"+string(b)+"<", 1)
			body = bytes.Replace(body, []byte(stateElement), []byte(filled), 1)
		}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", "no-cache", body)
}

// noCache makes the browser revalidate the assets, so a new node version's
// page never runs with the old script.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// stateJSON is GET /api/state, and the state in the page: the last sample
// of every node, the history of every node and model for the charts, and
// the recent events.
type stateJSON struct {
	Node         string `json:"node"`         // the node serving the page
	AdminEnabled bool   `json:"adminEnabled"` // whether this node has an operator token
	IntervalMs   int64  `json:"intervalMs"`
	WindowMs     int64  `json:"windowMs"`
	*clusterSample
	// History maps "node/model" to its points, oldest first (see samplePoint).
	History map[string][]samplePoint `json:"history"`
	// Events are the hub's backlog, oldest first, as /api/events sends them.
	Events []json.RawMessage `json:"events"`
	// LastEventID is the id of the hub's last event ("<stream>-<seq>"):
	// /api/events?lastEventId= goes on after it.
	LastEventID string `json:"lastEventId"`
}

// current returns the state, waiting for a fresh sample until ctx ends or
// statusTimeout and a second have passed; nil when there is none.
func (d *dashboard) current(ctx context.Context) *stateJSON {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout+time.Second)
	defer cancel()
	events, last := d.hub.recent() // before the sample: an event that comes in between is in the sample and on the stream after last
	snap, history := d.sampler.state(ctx, d.ctx)
	if snap == nil {
		return nil
	}
	return &stateJSON{
		Node:          d.node,
		AdminEnabled:  d.token != "",
		IntervalMs:    sampleInterval.Milliseconds(),
		WindowMs:      historyWindow.Milliseconds(),
		clusterSample: snap,
		History:       history,
		Events:        events,
		LastEventID:   last,
	}
}

func (d *dashboard) state(w http.ResponseWriter, r *http.Request) {
	st := d.current(r.Context())
	if st == nil {
		dashError(w, http.StatusServiceUnavailable, "no sample of the cluster yet: try again")
		return
	}
	dashJSON(w, r, http.StatusOK, st)
}

// dashJSON writes v as JSON, gzipped when the client takes it (a state
// with 50 models and 10 minutes of history is several hundred KiB).
func dashJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		dashError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeBody(w, r, status, "application/json", "no-store", body)
}

// writeBody writes body, gzipped when it is large and r takes gzip.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType, cacheControl string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Add("Vary", "Accept-Encoding")
	if r != nil && len(body) > 8<<10 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		gz := gzip.NewWriter(w)
		_, _ = gz.Write(body)
		_ = gz.Close()
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// dashError writes {"error": message}.
func dashError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(map[string]string{"error": message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
