package gateway

import (
	"context"
	"net"
	"syscall"
	"time"
)

// A client that goes away cancels its request's dispatch. fasthttp has no
// per-request context that ends when the connection closes (net/http's
// server read the connection in the background for that), so watch does
// it: while a request waits for its answer, a goroutine waits in the
// runtime's network poller for the connection to become readable, and
// looks without reading (recv with MSG_PEEK) at what came: nothing, the end
// of the stream or a reset means the client closed the connection, and the
// dispatch is cancelled. Bytes mean the client sent more (a pipelined
// request): the connection is alive and the watch ends without a verdict.
// The watch reads nothing, so fasthttp's reader loses nothing. stop ends it
// by putting the read deadline in the past, and waits for the goroutine;
// fasthttp sets the deadline again before it reads the next request.
//
// A connection that cannot be looked at this way (TLS, an in-memory pipe)
// is not watched: its requests run to their end.

// watcher is one watch; nil watches nothing.
type watcher struct {
	conn net.Conn
	done chan struct{}
}

// past is a deadline that has passed.
var past = time.Unix(1, 0)

// watch cancels when conn's peer closes it, until stop.
func watch(conn net.Conn, cancel context.CancelFunc) *watcher {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil || conn.SetReadDeadline(time.Time{}) != nil {
		return nil
	}
	w := &watcher{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		gone := false
		var b [1]byte
		err := raw.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
				return false // nothing yet: wait for the poller
			case err != nil, n == 0: // reset, or the end of the stream
				gone = true
			}
			return true
		})
		if gone && err == nil {
			cancel()
		}
	}()
	return w
}

// stop ends the watch and waits for it.
func (w *watcher) stop() {
	if w == nil {
		return
	}
	_ = w.conn.SetReadDeadline(past)
	<-w.done
}
