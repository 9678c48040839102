package gateway

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of the operator-token lockout.
const (
	// lockoutFailures wrong tokens from one address within lockoutWindow
	// lock that address out for lockoutWindow.
	lockoutFailures = 5
	lockoutWindow   = time.Minute
	// lockoutAddresses bounds the addresses remembered; past it, the ones
	// whose window is over are forgotten first, then the oldest.
	lockoutAddresses = 10000
)

// lockout rate-limits failed operator tokens per client address: after
// lockoutFailures wrong tokens within lockoutWindow, every admin request
// from that address gets 429 with Retry-After until the window that began
// with the lockout is over, whatever token it carries, so a token cannot
// be guessed faster than lockoutFailures per window per address. A right
// token forgets the address's failures. It is safe for concurrent use.
type lockout struct {
	now func() time.Time // injected for tests

	mu    sync.Mutex // guards addrs
	addrs map[string]*strikes
}

// strikes is one address's failures within its window.
type strikes struct {
	n           int
	since       time.Time // the window's start
	lockedUntil time.Time
}

func newLockout(now func() time.Time) *lockout {
	if now == nil {
		now = time.Now
	}
	return &lockout{now: now, addrs: make(map[string]*strikes)}
}

// locked returns how long addr stays locked out; 0 when it may try.
func (l *lockout) locked(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.addrs[addr]
	if s == nil {
		return 0
	}
	if left := s.lockedUntil.Sub(l.now()); left > 0 {
		return left
	}
	return 0
}

// fail records a wrong token from addr and returns how long addr is now
// locked out (0 while it has tries left).
func (l *lockout) fail(addr string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.addrs[addr]
	if s == nil || now.Sub(s.since) >= lockoutWindow {
		if s == nil && len(l.addrs) >= lockoutAddresses {
			l.forget(now)
		}
		s = &strikes{since: now}
		l.addrs[addr] = s
	}
	s.n++
	if s.n >= lockoutFailures {
		s.lockedUntil = now.Add(lockoutWindow)
		s.n, s.since = 0, s.lockedUntil // a new window begins when the lockout ends
		return lockoutWindow
	}
	return 0
}

// succeed forgets addr's failures.
func (l *lockout) succeed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.addrs, addr)
}

// forget drops the addresses neither locked nor counting, or, when every
// one is, the one whose window began first. l.mu is held.
func (l *lockout) forget(now time.Time) {
	var oldest string
	for a, s := range l.addrs {
		if now.Sub(s.since) >= lockoutWindow && !now.Before(s.lockedUntil) {
			delete(l.addrs, a)
			continue
		}
		if oldest == "" || s.since.Before(l.addrs[oldest].since) {
			oldest = a
		}
	}
	if len(l.addrs) >= lockoutAddresses && oldest != "" {
		delete(l.addrs, oldest)
	}
}

// clientAddr is the address a request came from, without its port: all
// connections from one host share their tries.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// retryAfter writes 429 with Retry-After in whole seconds, rounded up.
func retryAfter(w http.ResponseWriter, d time.Duration, message string) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	dashError(w, http.StatusTooManyRequests, message)
}
