package providers

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPClient returns the client that the HTTP providers share when the
// environment names a proxy for their endpoint (without one, each model
// keeps its own pool of connections: providers/internal/httpapi/pool.go):
// one connection pool for every model, sized for
// many concurrent calls to few hosts (up to 256 idle keep-alive connections
// per host), HTTP/1.1 only so that each stream has its own connection and a
// stalled stream cannot hold up the others behind one HTTP/2 connection. It
// sets no overall timeout: every call is bounded by its context, and a
// stream may legitimately last minutes. Dialling and TLS handshakes are
// bounded at 10 s.
func HTTPClient() *http.Client {
	sharedOnce.Do(func() {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		shared = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			Protocols:             &protocols,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}}
	})
	return shared
}

var (
	sharedOnce sync.Once
	shared     *http.Client
)
