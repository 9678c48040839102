package bus

import (
	"context"
	"errors"
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
	msg, err := NewMsg(subject, Protobuf, spec)
	if err != nil {
		return nil, err
	}
	if name := nc.Opts.Name; name != "" {
		msg.Header.Set(ActorHeader, name)
	}
	return gather(ctx, nc, msg, one, stall, " (is chaos enabled?)", func() *messages.FaultAck { return &messages.FaultAck{} })
}
