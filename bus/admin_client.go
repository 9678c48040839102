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

// ErrNoNodes is returned by AdminRequest when no node answered.
var ErrNoNodes = errors.New("no hive node answered")

// AdminRequest sends an admin command and gathers the replies: from one
// node when node names it, or from every node when node is "" or "all".
// Gathering ends at ctx's deadline, or once no new reply came for stall
// after the last one (every node answers within a few milliseconds of the
// others, so a pause means all have). Replies come back in arrival order.
// It returns ErrNoNodes when nobody answered; a refused command is a reply
// with its error set, not an error.
func AdminRequest(ctx context.Context, nc *nats.Conn, s Subjects, node, command string, cmd *messages.AdminCommand, stall time.Duration) ([]*messages.AdminReply, error) {
	subject := s.AdminAll(command)
	one := node != "" && node != allNodes
	if one {
		if err := ValidToken("node", node); err != nil {
			return nil, err
		}
		subject = s.Admin(node, command)
	}
	if cmd == nil {
		cmd = &messages.AdminCommand{}
	}
	msg, err := NewMsg(subject, Protobuf, cmd)
	if err != nil {
		return nil, err
	}
	return gather(ctx, nc, msg, one, stall, "", func() *messages.AdminReply { return &messages.AdminReply{} })
}

// gather publishes msg with a fresh inbox as its reply subject and collects
// the answers there: the first one only when one is set, else every answer
// until ctx ends or none came for stall after the last. Nobody answering
// is ErrNoNodes; hint is added to its message for no responders.
func gather[T proto.Message](ctx context.Context, nc *nats.Conn, msg *nats.Msg, one bool, stall time.Duration, hint string, fresh func() T) ([]T, error) {
	subject := msg.Subject
	inbox := nc.NewInbox() // under the connection's inbox prefix, which its permissions may require
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg.Reply = inbox
	if err := nc.PublishMsg(msg); err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	var out []T
	for {
		wait := stall
		if len(out) == 0 {
			wait = time.Hour // the first answer waits for ctx alone
		}
		waitCtx, cancel := context.WithTimeout(ctx, wait)
		m, err := sub.NextMsgWithContext(waitCtx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%w on %s: no responders%s", ErrNoNodes, subject, hint)
		}
		if err != nil {
			ended := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
			switch {
			case ended && len(out) > 0:
				return out, nil
			case ended:
				return nil, fmt.Errorf("%w on %s: %w", ErrNoNodes, subject, err)
			}
			return out, err
		}
		v := fresh()
		if CheckType(m.Header, v) != nil {
			// Not an answer of ours: something else reached the inbox
			// (a reply some node was tricked into sending here). Skip it.
			continue
		}
		if err := Decode(DetectEncoding(m.Header, m.Data), m.Data, v); err != nil {
			return out, fmt.Errorf("an answer on %s does not decode: %w", subject, err)
		}
		out = append(out, v)
		if one {
			return out, nil
		}
	}
}
