package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

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
	body, err := Encode(Protobuf, cmd)
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
	msg.Data = body
	if err := nc.PublishMsg(msg); err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	var replies []*messages.AdminReply
	for {
		wait := stall
		if len(replies) == 0 {
			wait = time.Hour // the first reply waits for ctx alone
		}
		waitCtx, cancel := context.WithTimeout(ctx, wait)
		m, err := sub.NextMsgWithContext(waitCtx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%w on %s: no responders", ErrNoNodes, subject)
		}
		if err != nil {
			if len(replies) > 0 && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				return replies, nil
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return nil, fmt.Errorf("%w on %s: %w", ErrNoNodes, subject, err)
			}
			return replies, err
		}
		r := &messages.AdminReply{}
		if err := Decode(DetectEncoding(m.Header, m.Data), m.Data, r); err != nil {
			return replies, fmt.Errorf("a reply on %s does not decode: %w", subject, err)
		}
		replies = append(replies, r)
		if one {
			return replies, nil
		}
	}
}
