package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
)

// Hook is one HTTP endpoint alerts are posted to.
type Hook struct {
	// URL is where alerts are posted, http or https. It may hold a secret:
	// it is never logged.
	URL string
	// Format is FormatJSON (the default when empty) or FormatSlack.
	Format string
	// MinSeverity: alerts less severe are not posted. The zero value, info,
	// posts every alert.
	MinSeverity messages.Alert_Severity
	// Timeout bounds one delivery attempt; 5s when 0.
	Timeout time.Duration
	// Retries is how many further attempts follow a failed one (after 1s,
	// 2s, 4s ... capped at 30s); 0 means none. Then the alert is dropped
	// for this hook and logged.
	Retries int
}

// settings are the knobs tests shorten.
type settings struct {
	limit      int           // alerts waiting per hook; the oldest goes when full
	backoff    time.Duration // before the first retry, doubling
	maxBackoff time.Duration
}

var defaults = settings{limit: 256, backoff: time.Second, maxBackoff: 30 * time.Second}

// Stats counts what became of the alerts handed to a Webhooks, per hook
// (an alert posted to two hooks counts twice).
type Stats struct {
	Delivered int64 // answered with a 2xx
	Failed    int64 // refused, or still failing after every retry
	Dropped   int64 // pushed out of a full queue, or not sent before Close gave up
}

// Webhooks posts alerts to hooks. Its Alert never blocks: each hook has a
// bounded queue (256) and its own goroutine that posts in order. Close
// stops it.
type Webhooks struct {
	hooks     []*hook
	transport *http.Transport
	closing   chan struct{}   // closed by Close: finish the queues, then stop
	abort     context.Context // cancelled when Close's context ends
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	delivered, failed, dropped atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// New starts one goroutine per hook. A hook whose URL is not an absolute
// http(s) URL, or whose format is unknown, is logged (by index) and left
// out.
func New(hooks []Hook, log zerolog.Logger) *Webhooks {
	return newWebhooks(hooks, log, defaults)
}

func newWebhooks(hooks []Hook, log zerolog.Logger, s settings) *Webhooks {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	w := &Webhooks{transport: tr, closing: make(chan struct{})}
	w.abort, w.cancel = context.WithCancel(context.Background())
	for i, cfg := range hooks {
		hl := log.With().Str("component", "webhook").Int("hook", i).Logger()
		u, err := url.Parse(cfg.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			hl.Error().Msg("webhook left out: its URL is not an absolute http(s) URL")
			continue
		}
		hl = hl.With().Str("host", u.Hostname()).Logger()
		switch cfg.Format {
		case "":
			cfg.Format = FormatJSON
		case FormatJSON, FormatSlack:
		default:
			hl.Error().Str("format", cfg.Format).Msg("webhook left out: unknown format")
			continue
		}
		if cfg.Timeout <= 0 {
			cfg.Timeout = 5 * time.Second
		}
		cfg.Retries = max(cfg.Retries, 0)
		h := &hook{
			w: w, cfg: cfg, settings: s, log: hl, wake: make(chan struct{}, 1),
			client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is an answer, not followed: the body goes nowhere else
			}},
		}
		w.hooks = append(w.hooks, h)
		w.wg.Add(1)
		go h.run()
	}
	return w
}

// Alert queues a for every hook whose MinSeverity it reaches. It never
// blocks; when a hook's queue is full its oldest alert is dropped, counted
// and logged. After Close it does nothing. The alert is only read, never
// changed.
func (w *Webhooks) Alert(a *messages.Alert) {
	for _, h := range w.hooks {
		if a.GetSeverity() >= h.cfg.MinSeverity {
			h.enqueue(a)
		}
	}
}

// Stats returns the counts so far.
func (w *Webhooks) Stats() Stats {
	return Stats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load()}
}

// Close stops taking alerts, delivers the queued ones (with their retries)
// until ctx ends, then abandons the rest, counted as dropped and logged,
// and stops every goroutine. It returns ctx's error when it had to abandon
// work. Calling it again returns the first result.
func (w *Webhooks) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		for _, h := range w.hooks {
			h.mu.Lock()
			h.closed = true
			h.mu.Unlock()
		}
		close(w.closing)
		done := make(chan struct{})
		go func() { w.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			w.cancel()
			<-done
			w.closeErr = fmt.Errorf("notify: close: %w", ctx.Err())
		}
		w.cancel()
		w.transport.CloseIdleConnections()
	})
	return w.closeErr
}

// hook is one endpoint's queue and sender.
type hook struct {
	w      *Webhooks
	cfg    Hook
	client *http.Client
	log    zerolog.Logger // with the hook's index and host, never its URL
	settings

	mu     sync.Mutex // guards queue and closed
	queue  []*messages.Alert
	closed bool
	wake   chan struct{} // a token when the queue gained an alert
}

func (h *hook) enqueue(a *messages.Alert) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	var lost *messages.Alert
	if len(h.queue) >= max(h.limit, 1) {
		lost = h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
	}
	h.queue = append(h.queue, a)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	if lost != nil {
		n := h.w.dropped.Add(1)
		h.log.Warn().Str("alert", lost.GetId()).Int64("dropped", n).Msg("webhook queue full: oldest alert dropped")
	}
}

// run posts the queued alerts in order until Close.
func (h *hook) run() {
	defer h.w.wg.Done()
	for {
		a, ok := h.next()
		if !ok {
			return
		}
		h.deliver(a)
	}
}

// next waits for the next alert; false once closing with an empty queue,
// or once Close gave up (the rest is dropped).
func (h *hook) next() (*messages.Alert, bool) {
	for {
		h.mu.Lock()
		if h.w.abort.Err() != nil {
			n := len(h.queue)
			h.queue = nil
			h.mu.Unlock()
			if n > 0 {
				h.w.dropped.Add(int64(n))
				h.log.Warn().Int("alerts", n).Msg("webhook closed before these alerts were sent")
			}
			return nil, false
		}
		if len(h.queue) > 0 {
			a := h.queue[0]
			h.queue[0] = nil
			h.queue = h.queue[1:]
			h.mu.Unlock()
			return a, true
		}
		closed := h.closed
		h.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-h.wake:
		case <-h.w.closing:
		}
	}
}

// deliver posts a, retrying with a doubling delay while the failure may
// pass (a network error, a timeout, 408, 429, 5xx).
func (h *hook) deliver(a *messages.Alert) {
	body, err := encode(h.cfg.Format, a)
	if err != nil {
		h.w.failed.Add(1)
		h.log.Error().Err(err).Str("alert", a.GetId()).Msg("alert not encoded")
		return
	}
	delay := h.backoff
	attempts := 0
	for {
		attempts++
		retry, err := h.post(body)
		if err == nil {
			h.w.delivered.Add(1)
			h.log.Debug().Str("alert", a.GetId()).Int("attempts", attempts).Msg("alert delivered")
			return
		}
		if !retry || attempts > h.cfg.Retries {
			h.w.failed.Add(1)
			h.log.Error().Err(err).Str("alert", a.GetId()).Str("rule", a.GetRule()).Str("state", a.GetState().String()).
				Int("attempts", attempts).Msg("webhook delivery failed: alert dropped")
			return
		}
		h.log.Warn().Err(err).Str("alert", a.GetId()).Int("attempt", attempts).Dur("retry_in", delay).Msg("webhook delivery failed: retrying")
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-h.w.abort.Done():
			t.Stop()
			h.w.dropped.Add(1)
			h.log.Warn().Str("alert", a.GetId()).Msg("webhook closed before this alert was sent")
			return
		}
		delay = min(2*delay, h.maxBackoff)
	}
}

// post makes one attempt. Its error never holds the URL.
func (h *hook) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(h.w.abort, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, redact(err, h.cfg.URL)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hive-notify")
	resp, err := h.client.Do(req)
	if err != nil {
		return true, redact(err, h.cfg.URL)
	}
	// Read a little of the body so the connection can be reused; its
	// content is not logged (an endpoint may echo what it was sent).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, &StatusError{Code: c}
	default:
		return false, &StatusError{Code: c}
	}
}

// StatusError is an endpoint's answer other than 2xx.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("endpoint answered %d", e.Code) }
