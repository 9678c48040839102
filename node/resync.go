package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// resyncWait bounds how long a request waits for the shared state to be
// read again after a reconnect: past it the request is served on the
// node's own state, as if the read had failed.
const resyncWait = persistOpenTimeout

// A node cut from NATS misses the other nodes' breaker events. So that it
// does not send a first burst to a model they found dead meanwhile, it
// reads the shared state again when the connection comes back, before it
// serves requests again: NATS requests wait from the disconnect (none can
// arrive while it lasts) and HTTP requests from the reconnect, until the
// read is done (within resyncWait), then go on. HTTP requests during the
// partition are served on the node's own state: it has no other.

// gate holds requests while it is shut. The zero value is open.
type gate struct {
	shut atomic.Pointer[chan struct{}] // nil while open; closed when it opens again
	mu   sync.Mutex                    // serialises shutting and opening
}

// close makes requests wait, until open.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut.Load() == nil {
		ch := make(chan struct{})
		g.shut.Store(&ch)
	}
}

// open lets the waiting requests and every later one through.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.shut.Load(); ch != nil {
		g.shut.Store(nil)
		close(*ch)
	}
}

// wait returns when g is open, ctx ends or resyncWait has passed.
func (g *gate) wait(ctx context.Context) {
	ch := g.shut.Load()
	if ch == nil {
		return
	}
	t := time.NewTimer(resyncWait)
	defer t.Stop()
	select {
	case <-*ch:
	case <-ctx.Done():
	case <-t.C:
	}
}

// dispatcher returns next behind g.
func (g *gate) dispatcher(next bus.Dispatcher) bus.Dispatcher { return gated{g, next} }

type gated struct {
	g    *gate
	next bus.Dispatcher
}

func (d gated) Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink) {
	d.g.wait(ctx)
	d.next.Dispatch(ctx, req, sink)
}

// resyncOnReconnect has the node read the shared state again each time its
// NATS connection comes back, with the ingresses gated meanwhile. The
// connection's own handlers (which log) still run first.
func (n *Node) resyncOnReconnect() {
	disconnected, reconnected := n.nc.DisconnectErrHandler(), n.nc.ReconnectHandler()
	n.nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		if disconnected != nil {
			disconnected(nc, err)
		}
		if !nc.IsClosed() {
			n.natsGate.close()
		}
	})
	n.nc.SetReconnectHandler(func(nc *nats.Conn) {
		if reconnected != nil {
			reconnected(nc)
		}
		n.resyncMu.Lock()
		defer n.resyncMu.Unlock()
		if n.closing {
			return
		}
		n.httpGate.close()
		n.natsGate.close()
		n.resyncs.Add(1)
		go func() {
			defer n.resyncs.Done()
			defer n.httpGate.open()
			defer n.natsGate.open()
			ctx, cancel := context.WithTimeout(context.Background(), resyncWait)
			defer cancel()
			count, err := n.readShared(ctx)
			if err != nil {
				n.log.Warn().Err(err).Msg("shared breaker states not read after the reconnect: serving on this node's own")
				return
			}
			n.log.Info().Int("open", count).Msg("read the other nodes' open breakers again after the reconnect, before serving")
		}()
	})
}
