package node

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/fault"
)

// embeddedKillGrace is how long a node running the embedded server waits
// after a kill's ack before it dies: the ack has reached the in-process
// server, which still has to write it to the client's socket.
const embeddedKillGrace = 100 * time.Millisecond

// nodeChaos carries out the faults injected into a node, as its
// bus.ChaosHandler: the model faults through a fault.Registry that every
// provider is wrapped in, the node faults (partition, kill) with timers of
// its own. It exists only when chaos.enabled is set; its methods accept a
// nil receiver and do nothing, so the node calls them either way.
type nodeChaos struct {
	log      zerolog.Logger
	faults   *fault.Registry
	endpoint *bus.Chaos
	// partition cuts the node's connection; nil with the embedded server,
	// which is the NATS server itself: a partition is then refused.
	partition *bus.Partition
	// kill ends the process as kill -9 does; tests replace it.
	kill func()

	mu     sync.Mutex               // guards timers and cut
	timers map[string][]*time.Timer // the pending steps of node faults, by fault id
	cut    map[string]bool          // the partitions in force, by fault id
}

// newNodeChaos returns the node's chaos handler, or nil when chaos is off.
func newNodeChaos(c config.Chaos, log zerolog.Logger) *nodeChaos {
	if !c.Enabled {
		return nil
	}
	log.Warn().Msg("chaos is enabled: faults injected on hive.v1.chaos.<node|all>.inject act on real traffic")
	return &nodeChaos{
		log:    log,
		faults: fault.NewRegistry(fault.Config{}),
		kill:   killSelf,
		timers: make(map[string][]*time.Timer),
		cut:    make(map[string]bool),
	}
}

// killSelf sends this process SIGKILL: no deferred function, no shutdown,
// exactly as kill -9.
func killSelf() {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Kill()
	}
	if err != nil { // unreachable on Unix; never carry on as if killed
		os.Exit(137)
	}
}

// partitionFor returns the Partition to give the node's connection to an
// external deployment; nil when chaos is off.
func (c *nodeChaos) partitionFor() *bus.Partition {
	if c == nil {
		return nil
	}
	c.partition = bus.NewPartition()
	return c.partition
}

// wrap puts the fault layer in front of every model's provider, the fresh
// ones recovery builds included.
func (c *nodeChaos) wrap(specs []actors.ModelSpec) {
	if c == nil {
		return
	}
	for i := range specs {
		s := &specs[i]
		name, newProvider := s.Name, s.NewProvider
		s.Provider = fault.Wrap(name, s.Provider, c.faults)
		if newProvider != nil {
			s.NewProvider = func() (providers.Provider, error) {
				p, err := newProvider()
				if err != nil {
					return nil, err
				}
				return fault.Wrap(name, p, c.faults), nil
			}
		}
	}
}

// start subscribes the chaos subjects of node.
func (c *nodeChaos) start(nc *nats.Conn, subjects bus.Subjects, node string, replies *bus.ReplyGuard, events *bus.Events) error {
	if c == nil {
		return nil
	}
	var err error
	c.endpoint, err = bus.StartChaos(bus.ChaosConfig{Conn: nc, Subjects: subjects, Node: node, Handler: c, Logger: c.log, Replies: replies, Events: events})
	return err
}

// stop unsubscribes and cancels the node faults still to come. A
// partition in force stays: the connection is being closed anyway.
func (c *nodeChaos) stop() {
	if c == nil {
		return
	}
	if c.endpoint != nil {
		c.endpoint.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.timers {
		c.cancel(id)
	}
}

// Inject implements bus.ChaosHandler: a spec fault.Check refuses is
// bus.ErrInvalidFault.
func (c *nodeChaos) Inject(spec *messages.FaultSpec) (func(), error) {
	if err := fault.Check(spec); err != nil {
		return nil, fmt.Errorf("%w: %w", bus.ErrInvalidFault, err)
	}
	id := spec.GetId()
	if spec.GetKind() == messages.FaultSpec_partition && c.partition == nil {
		return nil, fmt.Errorf("partition: this node runs the embedded NATS server, so it is the server and cannot be cut from it "+
			"(start it with --nats-url to partition it): %w", errors.ErrUnsupported)
	}
	c.mu.Lock()
	c.cancel(id) // a fault injected again under its id starts over
	c.mu.Unlock()
	c.faults.Inject(spec, c.faults.Now())
	after := time.Duration(spec.GetStartAfterMs()) * time.Millisecond
	switch spec.GetKind() {
	case messages.FaultSpec_partition:
		lasts := time.Duration(spec.GetDurationMs()) * time.Millisecond
		return func() {
			c.schedule(id, after, func() { c.partitionOn(id, lasts) })
			c.schedule(id, after+lasts, func() { c.partitionOff(id) })
		}, nil
	case messages.FaultSpec_kill:
		if c.partition == nil {
			after = max(after, embeddedKillGrace)
		}
		return func() {
			c.schedule(id, after, func() {
				c.log.Warn().Str("fault", id).Msg("chaos: killing this node (SIGKILL)")
				c.kill()
			})
		}, nil
	}
	return nil, nil
}

// Describe implements bus.ChaosHandler.
func (c *nodeChaos) Describe(spec *messages.FaultSpec) string { return fault.Describe(spec) }

// Clear implements bus.ChaosHandler.
func (c *nodeChaos) Clear(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		c.faults.ClearAll()
		for id := range c.timers {
			c.cancel(id)
		}
		for id := range c.cut {
			c.heal(id)
		}
		return nil
	}
	c.faults.Clear(id)
	c.cancel(id)
	if c.cut[id] {
		c.heal(id)
	}
	return nil
}

// Active implements bus.ChaosHandler.
func (c *nodeChaos) Active() []string { return c.faults.Active() }

// schedule runs step after d, unless the fault id is cleared first (also
// between its ack and this call).
func (c *nodeChaos) schedule(id string, d time.Duration, step func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.faults.Get(id); !ok {
		return
	}
	c.timers[id] = append(c.timers[id], time.AfterFunc(d, step))
}

// cancel stops the pending steps of the fault id; c.mu is held.
func (c *nodeChaos) cancel(id string) {
	for _, t := range c.timers[id] {
		t.Stop()
	}
	delete(c.timers, id)
}

// partitionOn starts the partition id: the first one in force cuts the
// connection.
func (c *nodeChaos) partitionOn(id string, lasts time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cut) == 0 {
		c.log.Warn().Str("fault", id).Dur("for", lasts).Msg("chaos: partitioned from NATS")
		if err := c.partition.Cut(); err != nil {
			c.log.Error().Err(err).Str("fault", id).Msg("chaos: partition not applied")
			return
		}
	}
	c.cut[id] = true
}

// partitionOff ends the partition id at the end of its duration.
func (c *nodeChaos) partitionOff(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.timers, id)
	if c.cut[id] {
		c.heal(id)
	}
}

// heal ends the partition id: the last one in force lets the connection
// back at once; c.mu is held.
func (c *nodeChaos) heal(id string) {
	delete(c.cut, id)
	if len(c.cut) > 0 {
		return
	}
	if err := c.partition.Heal(); err != nil {
		c.log.Error().Err(err).Str("fault", id).Msg("chaos: partition over, reconnect not started")
		return
	}
	c.log.Warn().Str("fault", id).Int("refused_dials", c.partition.Refused()).Msg("chaos: partition over: reconnecting")
}
