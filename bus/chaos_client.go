package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// ChaosRequest injects a fault (clear false) or clears faults (clear true)
// and gathers the acks: from one node when node names it, or from every
// node when node is "" or "all". An inject without an id gets one here, so
// that every node keeps the same id and one clear ends it everywhere; spec
// itself is not changed. A clear clears spec's id, or every fault when spec
// is nil or has no id. Gathering ends as AdminRequest's does: at ctx's
// deadline, or once no new ack came for stall after the last one. The
// request carries the connection's name in the Hive-Actor header, which
// the nodes record as the claimed actor. It returns ErrNoNodes when nobody
// answered (chaos disabled on every node looks the same); a refused fault
// is an ack with its error set, not an error.
func ChaosRequest(ctx context.Context, nc *nats.Conn, s Subjects, node string, clear bool, spec *messages.FaultSpec, stall time.Duration) ([]*messages.FaultAck, error) {
	target := allNodes
	one := node != "" && node != allNodes
	if one {
		if err := ValidToken("node", node); err != nil {
			return nil, err
		}
		target = node
	}
	subject := s.ChaosInject(target)
	if clear {
		subject = s.ChaosClear(target)
	}
	switch {
	case spec == nil && !clear:
		return nil, errors.New("chaos: inject needs a FaultSpec")
	case spec == nil:
		spec = &messages.FaultSpec{}
	case !clear && spec.GetId() == "":
		spec = proto.Clone(spec).(*messages.FaultSpec)
		spec.Id = NewFaultID()
	}
	body, err := Encode(Protobuf, spec)
	if err != nil {
		return nil, err
	}
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(subject)
	msg.Reply = inbox
	msg.Header.Set(ContentTypeHeader, Protobuf.ContentType())
	if name := nc.Opts.Name; name != "" {
		msg.Header.Set(ActorHeader, name)
	}
	msg.Data = body
	if err := nc.PublishMsg(msg); err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	var acks []*messages.FaultAck
	for {
		wait := stall
		if len(acks) == 0 {
			wait = time.Hour // the first ack waits for ctx alone
		}
		waitCtx, cancel := context.WithTimeout(ctx, wait)
		m, err := sub.NextMsgWithContext(waitCtx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%w on %s: no responders (is chaos enabled?)", ErrNoNodes, subject)
		}
		if err != nil {
			ended := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
			switch {
			case ended && len(acks) > 0:
				return acks, nil
			case ended:
				return nil, fmt.Errorf("%w on %s: %w", ErrNoNodes, subject, err)
			}
			return acks, err
		}
		ack := &messages.FaultAck{}
		if err := Decode(DetectEncoding(m.Header, m.Data), m.Data, ack); err != nil {
			return acks, fmt.Errorf("an ack on %s does not decode: %w", subject, err)
		}
		acks = append(acks, ack)
		if one {
			return acks, nil
		}
	}
}
