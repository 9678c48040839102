package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

const (
	// eventBacklog is how many events a new event stream starts with.
	eventBacklog = 100
	// clientBuffer is how many messages an event stream may fall behind
	// before the hub drops it (the browser reconnects and catches up from
	// the backlog with Last-Event-ID).
	clientBuffer = 256
	// eventsWriteTimeout bounds one write to an event stream: a client that stops
	// reading loses its stream, not a goroutine forever.
	eventsWriteTimeout = 10 * time.Second
	// eventsKeepAlive is how often an idle event stream gets a comment, so that
	// proxies keep it and dead clients are noticed.
	eventsKeepAlive = 15 * time.Second
	// eventsRetry is how long the hub waits before subscribing again when
	// Cluster.Events fails.
	eventsRetry = 2 * time.Second
)

// sseMessage is one server-sent event: name and data, and an id for the
// events kept in the backlog (0 for samples, which are not replayed).
type sseMessage struct {
	id   uint64
	name string
	data []byte
}

// eventJSON is an event as the page receives it.
type eventJSON struct {
	ID       uint64          `json:"id"`
	Stream   string          `json:"stream"` // the hub's start: ids count from 1 again in a new one
	Kind     string          `json:"kind"`
	Node     string          `json:"node,omitempty"`
	Model    string          `json:"model,omitempty"`
	Time     time.Time       `json:"time"`
	Received int64           `json:"received"` // unix ms on this node, comparable with a sample's sampledAt
	Line     string          `json:"line"`
	Event    json.RawMessage `json:"event,omitempty"` // protojson of Event.Event
}

// streamClient is one open event stream. The hub closes ch when it drops
// the client.
type streamClient struct {
	ch chan sseMessage
}

// eventHub fans the one Cluster.Events subscription out to every event stream.
// Publishing never blocks: a client whose buffer is full is dropped.
type eventHub struct {
	backlogSize, buffer int
	stream              string // identifies this hub's ids: "<start unix ns>"

	mu      sync.Mutex // guards the fields below
	seq     uint64
	backlog []sseMessage // the last backlogSize events, oldest first
	clients map[*streamClient]struct{}
	dropped int // clients dropped for being slow, for tests and logs
}

func newEventHub(backlog, buffer int) *eventHub {
	return &eventHub{backlogSize: backlog, buffer: buffer, clients: make(map[*streamClient]struct{}),
		stream: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// run follows c's events until ctx ends, subscribing again after an error.
func (h *eventHub) run(ctx context.Context, c Cluster, log zerolog.Logger) {
	for {
		err := c.Events(ctx, func(e Event) { h.event(e, time.Now()) })
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Dur("retry", eventsRetry).Msg("dashboard: event stream ended")
		select {
		case <-ctx.Done():
			return
		case <-time.After(eventsRetry):
		}
	}
}

// event encodes e and publishes it to every client and the backlog.
func (h *eventHub) event(e Event, received time.Time) {
	ej := eventJSON{Stream: h.stream, Kind: e.Kind, Node: e.Node, Model: e.Model, Time: e.Time.UTC(), Received: received.UnixMilli(), Line: e.Line}
	if e.Event != nil {
		if b, err := pageJSON.Marshal(e.Event); err == nil {
			ej.Event = b
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ej.ID = h.seq
	data, err := json.Marshal(ej)
	if err != nil { // a time out of JSON's range; nothing else fails
		return
	}
	m := sseMessage{id: h.seq, name: "event", data: data}
	if len(h.backlog) == h.backlogSize {
		copy(h.backlog, h.backlog[1:])
		h.backlog = h.backlog[:len(h.backlog)-1]
	}
	h.backlog = append(h.backlog, m)
	h.sendLocked(m)
}

// publish sends a message that is not kept in the backlog (a sample).
func (h *eventHub) publish(name string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(sseMessage{name: name, data: data})
}

func (h *eventHub) sendLocked(m sseMessage) {
	for c := range h.clients {
		select {
		case c.ch <- m:
		default: // too slow: drop it rather than wait
			close(c.ch)
			delete(h.clients, c)
			h.dropped++
		}
	}
}

// subscribe returns a new client and the backlog events after lastID.
func (h *eventHub) subscribe(lastID uint64) (*streamClient, []sseMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &streamClient{ch: make(chan sseMessage, h.buffer)}
	h.clients[c] = struct{}{}
	var backlog []sseMessage
	for _, m := range h.backlog {
		if m.id > lastID {
			backlog = append(backlog, m)
		}
	}
	return c, backlog
}

// recent returns the backlog's events, oldest first, and the id of the
// last event ("<stream>-<seq>", seq 0 before the first).
func (h *eventHub) recent() ([]json.RawMessage, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]json.RawMessage, 0, len(h.backlog))
	for _, m := range h.backlog {
		out = append(out, m.data)
	}
	return out, h.stream + "-" + strconv.FormatUint(h.seq, 10)
}

// lastID reads a Last-Event-ID header: the sequence number when the id is
// of this hub's stream, else 0 (the whole backlog: the node restarted).
func (h *eventHub) lastID(header string) uint64 {
	stream, seq, ok := strings.Cut(header, "-")
	if !ok || stream != h.stream {
		return 0
	}
	n, _ := strconv.ParseUint(seq, 10, 64)
	return n
}

// unsubscribe removes c unless the hub dropped it already.
func (h *eventHub) unsubscribe(c *streamClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.ch)
	}
}

// events is GET /api/events: server-sent events, "event" for each event
// of the deployment and "sample" for each sample of the cluster. It starts
// with the latest sample, so a page that was away is current at once, and
// the backlog: all of it, or the events after the Last-Event-ID header,
// which the browser sends when it reconnects, or after the lastEventId
// parameter, which the page sends when it opens a new stream. The
// stream ends when the client goes, when it falls too far behind, or at
// close.
func (d *dashboard) events(w http.ResponseWriter, r *http.Request) {
	if d.ctx.Err() != nil {
		dashError(w, http.StatusServiceUnavailable, "the dashboard is shutting down")
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	c, backlog := d.hub.subscribe(d.hub.lastID(last))
	defer d.hub.unsubscribe(c)
	d.sampler.streamOpened()
	defer d.sampler.streamClosed()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(ms ...sseMessage) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout)) // not every ResponseWriter supports it
		for _, m := range ms {
			if m.id > 0 {
				fmt.Fprintf(w, "id: %s-%d\n", d.hub.stream, m.id)
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", m.name, m.data)
		}
		return rc.Flush() == nil
	}
	// retry tells the browser how soon to reconnect after a dropped stream.
	fmt.Fprint(w, "retry: 1000\n\n")
	if latest := d.sampler.latestSample(); latest != nil {
		backlog = append([]sseMessage{{name: "sample", data: latest}}, backlog...)
	}
	if !write(backlog...) {
		return
	}
	ping := time.NewTicker(eventsKeepAlive)
	defer ping.Stop()
	for {
		select {
		case m, ok := <-c.ch:
			if !ok {
				return // dropped for being slow; the browser reconnects
			}
			batch := []sseMessage{m}
			for len(batch) < 64 && len(c.ch) > 0 {
				if m, ok = <-c.ch; ok {
					batch = append(batch, m)
				}
			}
			if !write(batch...) {
				return
			}
		case <-ping.C:
			_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
			fmt.Fprint(w, ": ping\n\n")
			if rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			return
		}
	}
}
