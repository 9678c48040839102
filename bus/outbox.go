package bus

import (
	"context"
	"runtime"
	"sync"
)

// outbox publishes the replies of plain requests in bursts while the node
// is busy, so that the connection's flusher finds several replies per
// socket write.
//
// Why: nats.go writes to the socket as soon as its flusher goroutine runs,
// and a node's replies come one at a time from the router, each some
// microseconds after the last, so without the outbox many replies were a
// write each (BenchmarkInfer, 64 requesters: 0.34 to 0.79 writes per reply
// on the node's connection, more on an idle machine, against one write per
// 35 replies for the plain echo subscriber, whose replies come in bursts).
// A reply queued here is published by one drainer goroutine, started when
// the first reply of a burst is queued and ended when the queue is empty.
// Before each batch the drainer yields once, so that the goroutines already
// runnable (the router answering the next requests) queue their replies
// first; the batch then goes out back to back and shares a write (0.05 to
// 0.15 writes per reply in the same benchmark). The ingress queues a reply
// only when another request is in flight (see sink.Final): a lone request
// is answered at once, without the hand-off.
//
// A queued reply is already counted and its request already ended (Stop
// no longer claims it); its request is released only once the reply was
// handed to the connection, so Stop, which waits for every request to be
// released, also waits for the outbox. Plain replies only: a stream's
// chunks are published in order by their sink, never through here.
type outbox struct {
	in *Ingress // set once by StartIngress

	mu    sync.Mutex    // guards queue, spare and done
	queue []*queued     // replies waiting for the drainer, in the order queued
	spare []*queued     // the drainer's last batch, emptied, reused as the next queue
	done  chan struct{} // while a drainer runs: closed when it ends (the queue is empty)
}

// put queues q and starts a drainer when none is running.
func (o *outbox) put(q *queued) {
	o.mu.Lock()
	o.queue = append(o.queue, q)
	start := o.done == nil
	if start {
		o.done = make(chan struct{})
	}
	o.mu.Unlock()
	if start {
		go o.drain()
	}
}

// drain publishes the queued replies, batch by batch, until the queue is
// empty.
func (o *outbox) drain() {
	for {
		runtime.Gosched() // let the replies that are about to come join this batch
		o.mu.Lock()
		batch := o.queue
		if len(batch) == 0 {
			close(o.done)
			o.done = nil
			o.mu.Unlock()
			return
		}
		o.queue, o.spare = o.spare[:0], nil
		o.mu.Unlock()
		for i, q := range batch {
			o.in.sendQueued(q)
			batch[i] = nil
		}
		o.mu.Lock()
		o.spare = batch[:0]
		o.mu.Unlock()
	}
}

// wait returns once every reply queued before the call has been handed
// to the connection, or when ctx ends.
func (o *outbox) wait(ctx context.Context) {
	o.mu.Lock()
	done := o.done
	o.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}
