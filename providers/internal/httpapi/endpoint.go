package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
)

// Bounds on what an upstream may send.
const (
	maxBody      = 8 << 20  // a plain answer
	maxErrorBody = 64 << 10 // a non-2xx body, read for its error object
	maxLine      = 1 << 20  // one line of an event stream
)

// Endpoint is one upstream API call as a backend has configured it. It is
// safe for concurrent use; its fields are not changed after NewEndpoint.
type Endpoint struct {
	// URL is where requests are POSTed.
	URL string
	// Client makes the calls when one was configured, or when the
	// environment sends URL through a proxy; nil means the endpoint's own
	// pool of keep-alive connections (pool.go).
	Client *http.Client
	// Header is set on every request, over Content-Type and Accept.
	Header http.Header
	// Secrets are removed from every error that may quote the upstream.
	Secrets []string

	pool         *pool       // nil when Client makes the calls
	streamHeader http.Header // Header with the stream's Content-Type and Accept
	answerHeader http.Header // and the plain answer's
}

// NewEndpoint returns the Endpoint for url. A nil client means the
// endpoint's own connection pool (pool.go), or providers.HTTPClient() when
// the environment names a proxy for url. header holds the backend's own headers (its
// credential, its API version); the configured headers are set over them,
// so that they may override any header. The secrets are apiKey and every
// configured header value of 8 bytes or more.
func NewEndpoint(url string, client *http.Client, header http.Header, apiKey string, configured map[string]string) *Endpoint {
	e := &Endpoint{URL: url, Client: client, Header: header.Clone(), Secrets: []string{apiKey}}
	if client == nil {
		if p, err := newPool(url); err == nil && p != nil {
			e.pool = p
		} else {
			e.Client = providers.HTTPClient() // a proxy, or a URL the pool cannot use: net/http says why
		}
	}
	if e.Header == nil {
		e.Header = http.Header{}
	}
	for k, v := range configured {
		e.Header.Set(k, v)
		if len(v) >= 8 {
			e.Secrets = append(e.Secrets, v)
		}
	}
	e.streamHeader = withDefaults(e.Header, "text/event-stream")
	e.answerHeader = withDefaults(e.Header, "application/json")
	return e
}

// withDefaults returns h over Content-Type application/json and accept.
func withDefaults(h http.Header, accept string) http.Header {
	out := http.Header{"Content-Type": {"application/json"}, "Accept": {accept}}
	for k, v := range h {
		out[k] = slices.Clone(v)
	}
	return out
}

// post sends payload as JSON and returns a 2xx response; any other outcome
// is a classified *providers.Error.
func (e *Endpoint) post(ctx context.Context, payload any, stream bool) (*http.Response, *providers.Error) {
	var body []byte
	if e.pool != nil { // the pool copies the body into its request: the buffer is reused
		buf := bodyBuffers.Get().(*[]byte)
		defer func() {
			if cap(body) <= maxPooledBody {
				*buf = body[:0]
				bodyBuffers.Put(buf)
			}
		}()
		body = (*buf)[:0]
	}
	body, err := appendPayload(body, payload)
	if err != nil {
		return nil, providers.Errorf(messages.ErrorClass_bad_request, "encode request: %v", err)
	}
	var resp *http.Response
	if e.pool != nil {
		header := e.answerHeader
		if stream {
			header = e.streamHeader
		}
		resp, err = e.pool.do(ctx, header, body)
	} else {
		resp, err = e.netHTTP(ctx, body, stream)
	}
	if err != nil {
		return nil, providers.ClassifyTransport(err).Redact(e.Secrets...)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if rerr != nil && ctx.Err() != nil {
			return nil, providers.ClassifyTransport(ctx.Err())
		}
		return nil, providers.ClassifyHTTP(resp.StatusCode, resp.Header, body).Redact(e.Secrets...)
	}
	return resp, nil
}

// An Appender writes itself as JSON, without the reflection of
// json.Marshal: a provider's request on the hot path.
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// bodyBuffers hold the JSON of requests made through a pool; one that
// grew past maxPooledBody (a long conversation) is left to the collector.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBody = 64 << 10

// appendPayload appends payload's JSON: its AppendJSON, or json.Marshal's.
func appendPayload(b []byte, payload any) ([]byte, error) {
	if a, ok := payload.(Appender); ok {
		return a.AppendJSON(b)
	}
	j, err := json.Marshal(payload)
	return append(b, j...), err
}

// netHTTP makes the call with e.Client.
func (e *Endpoint) netHTTP(ctx context.Context, body []byte, stream bool) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	for k, v := range e.Header {
		hr.Header[k] = slices.Clone(v)
	}
	return e.Client.Do(hr)
}

// Answer POSTs payload for a plain answer (Accept: application/json) and
// returns the 2xx status and the whole body. A refused call or a non-2xx
// answer is classified (providers.ClassifyTransport, ClassifyHTTP); a body
// that breaks off is classified as a transport failure, and one larger than
// 8 MiB is malformed, with the status.
func (e *Endpoint) Answer(ctx context.Context, payload any) (status int, body []byte, err *providers.Error) {
	resp, perr := e.post(ctx, payload, false)
	if perr != nil {
		return 0, nil, perr
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if rerr != nil {
		return 0, nil, providers.ClassifyTransport(rerr).Redact(e.Secrets...)
	}
	if len(body) > maxBody {
		tooLarge := providers.Errorf(messages.ErrorClass_malformed, "answer larger than %d bytes", maxBody)
		tooLarge.StatusCode = resp.StatusCode
		return 0, nil, tooLarge
	}
	return resp.StatusCode, body, nil
}
