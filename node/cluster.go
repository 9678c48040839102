package node

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/gateway"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/persistence"
)

// clusterGather is how long the dashboard's admin requests to every node
// wait for one more answer after the last, as the CLI's --gather does.
const clusterGather = 300 * time.Millisecond

// cluster is the whole deployment over NATS, as the dashboard reads it:
// gateway.Cluster over the admin and event subjects of every node.
type cluster struct {
	nc       *nats.Conn
	subjects bus.Subjects
}

// Status asks every node for its status.
func (c cluster) Status(ctx context.Context) ([]*messages.NodeStatus, error) {
	replies, err := bus.AdminRequest(ctx, c.nc, c.subjects, "all", bus.CmdStatus, nil, clusterGather)
	if err != nil {
		return nil, err
	}
	out := make([]*messages.NodeStatus, 0, len(replies))
	var refused []string
	for _, r := range replies {
		if !r.GetOk() || r.GetStatus() == nil {
			refused = append(refused, r.GetNode())
			continue
		}
		out = append(out, r.GetStatus())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("every node refused the status command: %v", refused)
	}
	return out, nil
}

// Events follows every node's events over core NATS (no JetStream needed).
func (c cluster) Events(ctx context.Context, fn func(gateway.Event)) error {
	return persistence.FollowEvents(ctx, c.nc, c.subjects, persistence.Query{}, func(e persistence.Entry) error {
		fn(gateway.Event{Kind: e.Kind, Node: e.Node, Model: e.Model, Time: e.Time, Line: persistence.FormatEntry(e), Event: e.Event})
		return nil
	})
}

// Admin sends one admin command to node, or to every node with "all".
func (c cluster) Admin(ctx context.Context, node, command string, cmd *messages.AdminCommand) ([]*messages.AdminReply, error) {
	return bus.AdminRequest(ctx, c.nc, c.subjects, node, command, cmd, clusterGather)
}
