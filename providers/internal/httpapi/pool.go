package httpapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The endpoint's own HTTP/1.1 client. Each Endpoint without a configured
// *http.Client keeps a pool of keep-alive connections to its one host (so
// one pool per model), writes each request in one write, parses the
// answer's header with fasthttp's zero-allocation parser and reads the body
// straight from the connection's buffer: no goroutine per connection, no
// hand-off between goroutines per call, as net/http's transport has (a read
// loop and a write loop per connection). A call's context cancels it at
// once: its connection's deadline is put in the past, the read or write in
// progress fails, and the connection is closed instead of pooled. An idle
// connection that the upstream closed is noticed before use (alive) and
// dropped; one the upstream closes at the very moment a request goes out
// fails that call as connection, which is not retried here (a POST may
// have been taken): the model's retry policy decides.
//
// What net/http's client did that this one does not: gzip (no
// Accept-Encoding is sent, so the answer comes uncompressed), HTTP/2 (which
// HTTPClient turned off anyway), redirects (a 3xx is a non-2xx answer), and
// proxies: an endpoint for which the environment names a proxy
// (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) keeps using providers.HTTPClient().

// Bounds of a pool.
const (
	// maxIdle bounds the idle connections a pool keeps; one more is closed.
	maxIdle = 256
	// idleTimeout is how long an idle connection is kept.
	idleTimeout = 90 * time.Second
	// dialTimeout bounds dialling and the TLS handshake.
	dialTimeout = 10 * time.Second
	// readBuffer is each connection's read buffer; the answer's header
	// must fit in it.
	readBuffer = 16 << 10
)

// pool is one host's connections.
type pool struct {
	scheme, host, addr string // addr has the port
	requestURI         string // path and query, as sent
	tls                *tls.Config
	dialer             net.Dialer

	mu   sync.Mutex // guards idle
	idle []*pconn   // the most recently used last
}

// pconn is one connection and its read buffer.
type pconn struct {
	conn  net.Conn
	br    *bufio.Reader
	since time.Time // idle since
}

// proxyFor is where net/http would send a request (read from the
// environment once per process); tests replace it.
var proxyFor = http.ProxyFromEnvironment

// newPool returns the pool for rawURL, or nil when the environment sends
// that URL through a proxy or the URL is not http(s).
func newPool(rawURL string) (*pool, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if proxy, err := proxyFor(&http.Request{URL: u}); err != nil || proxy != nil {
		return nil, nil
	}
	p := &pool{scheme: u.Scheme, host: u.Host, addr: u.Host, requestURI: u.RequestURI(),
		dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		p.addr = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Scheme == "https" {
		p.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	}
	return p, nil
}

// get returns an idle connection still open, or dials a new one.
func (p *pool) get(ctx context.Context) (*pconn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(c.since) < idleTimeout && c.br.Buffered() == 0 && alive(c.conn) {
			return c, nil
		}
		_ = c.conn.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := p.dialer.DialContext(dctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(conn, p.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &pconn{conn: conn, br: bufio.NewReaderSize(conn, readBuffer)}, nil
}

// put gives c back for another call, or closes it when the pool is full.
func (p *pool) put(c *pconn) {
	c.since = time.Now()
	p.mu.Lock()
	if len(p.idle) < maxIdle {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = c.conn.Close()
}

// alive reports whether an idle connection is still open: the peer has not
// closed it nor sent anything unasked. A connection that cannot be looked
// at without reading (TLS) is taken as alive.
func alive(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true // never wait
	})
	return err == nil && ok
}

// past is a deadline that has passed: it fails a connection's pending and
// later reads and writes at once.
var past = time.Unix(1, 0)

// call is one request on one connection.
type call struct {
	p      *pool
	c      *pconn
	ctx    context.Context
	stop   func() bool // stops the cancel hook; false once it fired
	header fasthttp.ResponseHeader
}

// do writes a POST of body with header to p's URL and reads the answer's
// header; the body is then read from the returned reader, whose Close
// pools the connection when the body was read to its end.
func (p *pool) do(ctx context.Context, header http.Header, payload []byte) (*http.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := p.get(ctx)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	k := &call{p: p, c: c, ctx: ctx}
	k.stop = context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(past) })
	buf := requestBuffers.Get().(*[]byte)
	b := appendRequest((*buf)[:0], p, header, payload)
	_, err = c.conn.Write(b)
	*buf = b[:0]
	requestBuffers.Put(buf)
	if err != nil {
		return nil, k.fail(err)
	}
	if err := k.header.Read(c.br); err != nil {
		return nil, k.fail(err)
	}
	resp := &http.Response{
		Status:     strconv.Itoa(k.header.StatusCode()),
		StatusCode: k.header.StatusCode(),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 3),
	}
	for _, name := range []string{"Content-Type", "Retry-After", "Retry-After-Ms"} {
		if v := k.header.Peek(name); len(v) > 0 {
			resp.Header[name] = []string{string(v)}
		}
	}
	rb := &body{k: k, reuse: !k.header.ConnectionClose()}
	switch n := k.header.ContentLength(); {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || n == 0:
		rb.r, rb.left, rb.err = eofReader{}, 0, io.EOF
		rb.release(true)
	case n > 0:
		rb.r, rb.left = io.LimitReader(c.br, int64(n)), int64(n)
	case n == -1: // chunked
		rb.r, rb.chunked, rb.left = httputil.NewChunkedReader(c.br), true, -1
	default: // until the connection closes
		rb.r, rb.reuse, rb.left = c.br, false, -1
	}
	resp.ContentLength = rb.left
	resp.Body = rb
	return resp, nil
}

// fail closes the call's connection and returns err, or the context's
// error when the context ended the call.
func (k *call) fail(err error) error {
	k.stop()
	_ = k.c.conn.Close()
	return ctxErr(k.ctx, err)
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

var requestBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// appendRequest appends the whole request, head and body, to b.
func appendRequest(b []byte, p *pool, header http.Header, body []byte) []byte {
	b = append(b, "POST "...)
	b = append(b, p.requestURI...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, p.host...)
	b = append(b, "\r\nUser-Agent: hive-resilience\r\n"...)
	for k, vv := range header {
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// appendHeaderValue appends v without CR and LF, which would split the
// header (net/http drops them the same way).
func appendHeaderValue(b []byte, v string) []byte {
	for i := range len(v) {
		if c := v[i]; c != '\r' && c != '\n' {
			b = append(b, c)
		} else {
			b = append(b, ' ')
		}
	}
	return b
}

// body is an answer's body on its connection. Read is used by one
// goroutine; Close may be called from another, and ends a Read in
// progress.
type body struct {
	k       *call
	r       io.Reader
	chunked bool
	reuse   bool // the server keeps the connection open

	mu       sync.Mutex // guards the fields below
	left     int64      // bytes still to come for a Content-Length body, -1 otherwise
	err      error      // sticky
	released bool       // the connection went back to the pool or was closed
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return 0, b.err
	}
	b.mu.Unlock()
	n, err := b.r.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left > 0 {
		b.left -= int64(n)
	}
	switch {
	case b.released: // closed while reading
		err = ctxErr(b.k.ctx, errClosed)
	case err == io.EOF && b.left > 0:
		err = io.ErrUnexpectedEOF // the connection closed before Content-Length
	case err == io.EOF && b.chunked:
		err = b.trailers()
	case err == nil && b.left == 0:
		err = io.EOF // a Content-Length body read to its end
		if n > 0 {
			b.err = err
			b.release(true)
			return n, nil
		}
	}
	if err != nil {
		if err != io.EOF {
			err = ctxErr(b.k.ctx, err)
		}
		b.err = err
		b.release(err == io.EOF)
	}
	return n, err
}

var errClosed = errors.New("read on a closed body")

// release gives the connection back to the pool when the body was read to
// its end (complete) and neither side closes the connection, or closes it.
// b.mu is held.
func (b *body) release(complete bool) {
	if b.released {
		return
	}
	b.released = true
	if b.k.stop() && complete && b.reuse {
		b.k.p.put(b.k.c)
		return
	}
	_ = b.k.c.conn.Close()
}

// trailers reads the lines after a chunked body's last chunk, up to the
// blank line that ends it; io.EOF when all went well.
func (b *body) trailers() error {
	for range 64 {
		line, err := b.k.c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 { // "\r\n" or "\n"
			return io.EOF
		}
	}
	return errors.New("too many trailer lines")
}

// Close ends the call. A body read to its end has already given its
// connection back; any other is closed, which ends a Read in progress.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = errClosed
	}
	if !b.released {
		b.released = true
		b.k.stop()
		_ = b.k.c.conn.SetDeadline(past) // a Read in progress ends now
		_ = b.k.c.conn.Close()
	}
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
