package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// drainWait bounds how long the drain command waits for requests in flight
// before it answers (the node keeps refusing new ones either way).
const drainWait = 5 * time.Second

// nodeAdmin carries out admin commands on a node: bus.AdminHandler.
type nodeAdmin struct{ n *Node }

// commandOps maps admin commands to the model actors' manual actions.
var commandOps = map[string]actors.ControlOp{
	bus.CmdBreakerOpen:  actors.OpForceOpen,
	bus.CmdBreakerClose: actors.OpClose,
	bus.CmdBreakerReset: actors.OpReset,
	bus.CmdModelEnable:  actors.OpEnable,
	bus.CmdModelDisable: actors.OpDisable,
}

func (a *nodeAdmin) Status() *messages.NodeStatus {
	n := a.n
	st := &messages.NodeStatus{
		Node:              n.cfg.ID,
		Version:           n.cfg.Version,
		Started:           timestamppb.New(n.started),
		Draining:          n.draining.Load(),
		Persistence:       n.store != nil,
		PersistenceDetail: n.persistenceDetail,
		Models:            n.hive.Status(),
		Alerts:            n.hive.Alerts(),
	}
	return st
}

func (a *nodeAdmin) Control(command string, cmd *messages.AdminCommand) (*messages.ModelStatus, error) {
	op, ok := commandOps[command]
	if !ok {
		return nil, fmt.Errorf("command %q is not a model command", command)
	}
	st, err := a.n.hive.Control(cmd.GetModel(), op, messages.Duration(cmd.GetDurationMs()), cmd.GetActor(), cmd.GetReason())
	if errors.Is(err, actors.ErrUnknownModel) {
		return nil, fmt.Errorf("%w: %w", bus.ErrNotFound, err)
	}
	return st, err
}

// Drain leaves the infer queue group, so other nodes get the NATS traffic,
// lets the requests already taken finish (waiting up to drainWait for them
// before it answers), and makes the router refuse what still arrives over
// HTTP with no_capacity (draining); /readyz then reports not ready.
func (a *nodeAdmin) Drain() error {
	n := a.n
	n.draining.Store(true)
	n.jobs.drain() // no new jobs; the running ones go on
	ctx, cancel := context.WithTimeout(context.Background(), drainWait)
	defer cancel()
	if err := n.ingress.Leave(ctx); err != nil {
		return err
	}
	if err := n.hive.Drain(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (a *nodeAdmin) AckAlert(id, actor string) (*messages.Alert, error) {
	al, err := a.n.hive.AckAlert(id, actor)
	if errors.Is(err, actors.ErrUnknownAlert) {
		return nil, fmt.Errorf("%w: %w", bus.ErrNotFound, err)
	}
	return al, err
}
