package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cmmv-hive/resilience/messages"
)

// Forwarding, for deployments whose nodes serve different model sets.
//
// Every node answers hive.v1.infer (queue group "hive"), and each node also
// answers hive.v1.infer.<model> for every model it serves (queue group
// "hive" too). A node that receives on hive.v1.infer a request for a model
// it lacks sends the request, body and headers unchanged, to that model's
// subject as a request of its own, with the caller's reply subject in the
// Hive-Reply-To header. The node that takes it acknowledges at once (an
// empty message of type hive.v1.Forwarded) and then answers the caller
// directly on Hive-Reply-To, streams included, so a forwarded request costs
// one extra hop before it is served and none after. When no node answers
// the model's subject (NATS's no-responders status), the first node answers
// unknown_model: no node in the deployment serves the model. Hive-Reply-To
// passes the same ReplyGuard as any reply subject.

const (
	// forwardReplyHeader carries the caller's reply subject on a forwarded
	// request.
	forwardReplyHeader = "Hive-Reply-To"
	// forwardedByHeader names the node that forwarded a request, for logs.
	forwardedByHeader = "Hive-Forwarded-By"
	// forwardAckType is the TypeHeader of the serving node's ack.
	forwardAckType = "hive.v1.Forwarded"
	// forwardAckTimeout bounds the wait for the ack of a forwarded request.
	forwardAckTimeout = 5 * time.Second
)

// forward hands req, received on the public subject for a model this node
// does not serve, to the nodes that serve it. It returns at once; a
// goroutine waits for the ack and answers the caller on reply only when no
// node took the request.
func (in *Ingress) forward(r micro.Request, reply string, enc Encoding, req *messages.InferRequest) {
	if ValidToken("model", req.Model) != nil {
		in.refuseTo(r, reply, enc, req, unknownModel(req.Model))
		return
	}
	in.mu.Lock()
	if in.state != running {
		in.mu.Unlock()
		in.refuseTo(r, reply, enc, req, nodeStopping())
		return
	}
	in.forwards.Add(1)
	in.mu.Unlock()

	msg := nats.NewMsg(in.subjects.InferModel(req.Model))
	for k, vs := range r.Headers() {
		msg.Header[k] = append([]string(nil), vs...)
	}
	msg.Header.Set(forwardReplyHeader, reply)
	msg.Header.Set(forwardedByHeader, in.node)
	msg.Data = r.Data()
	go func() {
		defer in.forwards.Done()
		ctx, cancel := context.WithTimeout(in.ctx, forwardAckTimeout)
		defer cancel()
		ack, err := in.nc.RequestMsgWithContext(ctx, msg)
		var e *messages.Error
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			e = unknownModel(req.Model)
		case err != nil:
			e = messages.Failure(messages.ErrorClass_no_capacity, "forward_failed",
				"model %q is not served by node %s, and no node that serves it took the request: %v", req.Model, in.node, err)
		case headerValue(ack.Header, TypeHeader) != forwardAckType:
			e = messages.Failure(messages.ErrorClass_server_error, "forward_failed",
				"model %q: the node that took the forwarded request sent no acknowledgement", req.Model)
		default:
			in.forwarded.Add(1)
			return
		}
		in.log.Debug().Str("model", req.Model).Str("code", e.GetCode()).Msg("forwarded request not taken")
		in.replyError(reply, enc, req, e)
	}()
}

// replyError publishes an error reply to reply from any goroutine, as
// refuseTo does outside the callback: the final reply of a request that
// was never dispatched.
func (in *Ingress) replyError(reply string, enc Encoding, req *messages.InferRequest, e *messages.Error) {
	s := &sink{in: in, subject: reply, enc: enc, requestID: req.GetRequestId(), stream: req.GetStream()}
	s.publish(&messages.InferResponse{Error: e})
}

// unknownModel is the error of a request for a model no node serves.
func unknownModel(model string) *messages.Error {
	return messages.Failure(messages.ErrorClass_bad_request, "unknown_model",
		"unknown model %q: no node in the deployment serves it", model)
}

// waitForwards waits until every forward has been acknowledged or
// answered, or ctx ends.
func (in *Ingress) waitForwards(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		in.forwards.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
