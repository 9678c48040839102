package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/gateway"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/notify"
	"github.com/cmmv-hive/resilience/persistence"
)

// Defaults of Config.
const (
	// DefaultListen is the embedded NATS server's address.
	DefaultListen = "127.0.0.1:4222"
	// DefaultDataDir holds the embedded server's JetStream store.
	DefaultDataDir = "data"
)

var (
	// ErrConfig is matched by Start's error for a Config that cannot run: a
	// missing field, a bad node ID or listen address.
	ErrConfig = errors.New("node: invalid config")
)

// Config is what Start needs. Files and ID are required; the zero value of
// every other field is its documented default.
type Config struct {
	// Files are resilience.yml and models-resilience.yml, loaded.
	Files *config.Config
	// ID names the node in subjects, events and replies: a subject token
	// (letters, digits, - and _).
	ID string
	// Version is the build's SemVer version, in `nats micro info` and
	// status replies; bus.DefaultVersion when empty.
	Version string
	// NATS connects to an existing deployment when NATS.URLs is set (its
	// Name, when empty, is "hive-node <ID>"; its Logger is the node's).
	// Without URLs the node starts an embedded server with JetStream on
	// Listen, storing in DataDir, and connects in process with NATS's other
	// settings.
	NATS    bus.ConnectOptions
	Listen  string // host:port of the embedded server, port -1 for any free one; DefaultListen
	DataDir string // DefaultDataDir
	// HTTPAddr is the HTTP listen address of the gateway and dashboard;
	// "" or "off" serves no HTTP.
	HTTPAddr string
	// PprofAddr serves Go's profiles on their own listener; "" for none.
	PprofAddr string
	// ShutdownGrace bounds how long Stop waits for requests in flight;
	// 0 means resilience.yml's shutdownGrace.
	ShutdownGrace time.Duration
	// AdminToken is the operator token the dashboard's admin actions
	// require; empty refuses them. It is never logged.
	AdminToken string
}

// Node is one running hive node and everything it owns. Start builds it
// in this order, and Stop takes it down in reverse: the logger's node key,
// the NATS connection (and the embedded server), persistence, the actors,
// the event subscriptions, durable jobs, the NATS ingress, the admin,
// chaos and jobs endpoints, HTTP.
type Node struct {
	cfg     Config
	log     zerolog.Logger
	grace   time.Duration
	embed   *server.Server // nil when joining an existing deployment
	nc      *nats.Conn
	hive    *actors.Hive
	ingress *bus.Ingress
	admin   *bus.Admin
	chaos   *nodeChaos // nil unless chaos.enabled
	jobs    *nodeJobs  // nil unless jobs run here
	replies *bus.ReplyGuard
	started time.Time

	draining atomic.Bool // set by the drain command

	store             *persistence.Store // nil without persistence
	persistenceDetail string
	metrics           *gateway.Metrics
	hooks             *notify.Webhooks     // nil without webhooks
	events            []*nats.Subscription // other nodes' health, for recovery
	http              *fasthttp.Server
	pprof             *http.Server // Config.PprofAddr
	httpErr           chan error
	httpLn            net.Listener     // closed after the server's shutdown too: one before Serve took it would not close it
	gateway           *gateway.Handler // closed before the HTTP server shuts down
	natsURL           string           // where clients reach NATS
	httpURL           string
	served            bus.Dispatcher // the hive, with idempotency keys when jobs are on
	natsGate          gate           // holds NATS requests from a disconnect until the shared state is read again
	httpGate          gate           // holds HTTP requests from a reconnect until the shared state is read again
	resyncMu          sync.Mutex     // guards closing against resyncs.Add
	closing           bool           // close has begun: no more reads of the shared state
	resyncs           sync.WaitGroup // reads of the shared state after a reconnect
}

// Start starts a node: the embedded NATS server (without NATS.URLs) and
// the connection, persistence, the actors, the NATS service, the admin and
// chaos endpoints and HTTP. ctx bounds the start only (opening
// persistence waits for JetStream); the node runs until Stop. On error
// everything started so far is stopped again.
func Start(ctx context.Context, cfg Config, log zerolog.Logger) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log = log.With().Str("node", cfg.ID).Logger()
	n := &Node{cfg: cfg, log: log, grace: cfg.Files.Global.ShutdownGrace, started: time.Now()}
	if cfg.ShutdownGrace > 0 {
		n.grace = cfg.ShutdownGrace
	}
	if err := n.start(ctx); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (c *Config) validate() error {
	switch {
	case c.Files == nil:
		return fmt.Errorf("%w: Files is nil", ErrConfig)
	case c.ID == "":
		return fmt.Errorf("%w: ID is empty", ErrConfig)
	}
	if err := bus.ValidToken("node", c.ID); err != nil {
		return fmt.Errorf("%w: ID: %w", ErrConfig, err)
	}
	if c.Version == "" {
		c.Version = bus.DefaultVersion
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.NATS.Name == "" {
		c.NATS.Name = "hive-node " + c.ID
	}
	return nil
}

func (n *Node) start(ctx context.Context) error {
	log, files := n.log, n.cfg.Files
	n.chaos = newNodeChaos(files.Global.Chaos, log)
	if err := n.connect(); err != nil {
		return err
	}
	hc, err := hiveConfig(files, n.cfg.ID, log)
	if err != nil {
		return err
	}
	n.chaos.wrap(hc.Models) // faults in front of every provider when chaos is on
	subjects := bus.NewSubjects(files.Global.SubjectPrefix)
	identities := make(map[string]string, len(hc.Models))
	for _, m := range hc.Models {
		identities[m.Name] = m.Identity
	}
	if err := n.openPersistence(ctx, files.Global.Persistence, files.Global.Cluster, subjects, identities); err != nil {
		return err
	}
	if n.store != nil {
		hc.Store = n.store.Breakers()
		if l := n.store.Leases(); l != nil {
			hc.Peers.Leases = l
		}
	}
	models := make([]string, len(hc.Models))
	for i, m := range hc.Models {
		models[i] = m.Name
	}
	n.metrics = gateway.NewMetrics(n.cfg.ID, models...)
	n.replies = bus.NewReplyGuard(files.Global.ReplyPrefixes, log, n.metrics.RefusedReply)
	events := bus.NewEvents(n.nc, subjects, log)
	if files.Global.Events.Encoding == "protobuf" {
		events = events.WithEncoding(bus.Protobuf)
	}
	pub := &fanout{sinks: []actors.Publisher{events, n.metrics}}
	if n.hooks, err = newWebhooks(files.Global.Alerts.Webhooks, log); err != nil {
		return err
	}
	if n.hooks != nil {
		pub.alerts = append(pub.alerts, n.hooks)
	}
	hc.Publisher = pub
	if n.hive, err = actors.New(hc); err != nil {
		return err
	}
	// Recovery also sees other nodes' health and breaker events, and the
	// models adopt their peers' openings. Subscribed before the shared
	// state is read, so that nothing between the two is missed.
	if n.events, err = bus.SubscribeHealth(n.nc, subjects, log, func(ev proto.Message) { n.hive.Observe(ev) }); err != nil {
		return fmt.Errorf("subscribe to health events: %w", err)
	}
	jobs, err := n.openJobs(ctx, files.Global.Jobs, files.Global.Persistence, subjects)
	if err != nil {
		return err
	}
	// Idempotency keys are honoured on both ingresses when jobs are on.
	n.served = n.hive
	if jobs != nil {
		n.served = jobs.Idempotent(n.hive)
	}
	n.adoptShared(ctx, files.Global.Cluster)
	n.ingress, err = bus.StartIngress(bus.IngressConfig{
		Conn:       n.nc,
		Subjects:   subjects,
		Node:       n.cfg.ID,
		Version:    n.cfg.Version,
		Dispatcher: n.metrics.Wrap("nats", n.natsGate.dispatcher(n.served)),
		Logger:     log,
		Replies:    n.replies,
		Models:     files.Order,
	})
	if err != nil {
		return err
	}
	n.admin, err = bus.StartAdmin(bus.AdminConfig{
		Conn:     n.nc,
		Subjects: subjects,
		Node:     n.cfg.ID,
		Handler:  &nodeAdmin{n: n},
		Logger:   log,
		Replies:  n.replies,
		Events:   events,
	})
	if err != nil {
		return err
	}
	if err := n.chaos.start(n.nc, subjects, n.cfg.ID, n.replies, events); err != nil {
		return err
	}
	if err := n.startJobs(jobs, files.Global.Jobs, subjects, n.metrics.Wrap("jobs", n.hive)); err != nil {
		return err
	}
	if err := n.listenHTTP(subjects); err != nil {
		return err
	}
	if err := n.servePprof(n.cfg.PprofAddr); err != nil {
		return err
	}
	log.Info().
		Str("nats", n.natsURL).
		Str("subject", subjects.Infer()).
		Str("http", n.httpURL).
		Int("models", len(hc.Models)).
		Str("version", n.cfg.Version).
		Msg("hive node serving")
	return nil
}

// connect joins the deployment of NATS.URLs, or starts the embedded server
// and connects to it in process.
func (n *Node) connect() error {
	opts := n.cfg.NATS
	opts.Logger = n.log
	if opts.URLs != "" {
		opts.Partition = n.chaos.partitionFor() // nil unless chaos is on
		nc, err := bus.Connect(opts)
		if err != nil {
			return err
		}
		n.nc, n.natsURL = nc, bus.Redact(nc.ConnectedUrl())
		return nil
	}
	host, port, err := splitHostPort(n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("%w: Listen %q: %w", ErrConfig, n.cfg.Listen, err)
	}
	n.embed, err = bus.StartEmbedded(bus.EmbeddedOptions{
		Host:       host,
		Port:       port,
		StoreDir:   n.cfg.DataDir, // nats-server adds "jetstream"
		ServerName: n.cfg.ID,
		Logger:     n.log,
	})
	if err != nil {
		return err
	}
	n.natsURL = n.embed.ClientURL()
	n.nc, err = bus.ConnectInProcess(n.embed, opts)
	return err
}

// NATSURL is where clients reach the node's NATS: the embedded server's
// address, or the deployment's URL it connected to (without credentials).
func (n *Node) NATSURL() string { return n.natsURL }

// HTTPURL is the base URL of the node's HTTP endpoints; "" without HTTP.
func (n *Node) HTTPURL() string { return n.httpURL }

// Status is the node's status, as `hive-node status` shows it: version,
// uptime, draining, persistence, every model and the firing alerts.
func (n *Node) Status() *messages.NodeStatus { return (&nodeAdmin{n: n}).Status() }

// Ready implements gateway.Readiness: the node takes requests.
func (n *Node) Ready() error {
	switch {
	case n.nc == nil || !n.nc.IsConnected():
		return errors.New("not connected to NATS")
	case n.ingress == nil:
		return errors.New("not serving requests")
	case n.draining.Load():
		return errors.New("draining on an operator's command")
	}
	return nil
}

// Stop stops taking requests, lets those in flight finish up to the grace
// period, stops the actors (answering whatever is left), then drains NATS
// and stops the embedded server. Its error says what was abandoned (see
// bus.Ingress.Stop).
func (n *Node) Stop() error {
	n.log.Info().Dur("grace", n.grace).Msg("shutting down: no new requests, finishing in-flight ones")
	ctx, cancel := context.WithTimeout(context.Background(), n.grace)
	defer cancel()
	var errs []error
	if n.ingress != nil {
		if err := n.ingress.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if returned := n.jobs.stop(ctx); returned > 0 {
		n.log.Warn().Int("jobs", returned).Msg("jobs still running at the end of the grace period went back to the queue unfinished; another node runs them")
	}
	n.jobs = nil
	n.close()
	if len(errs) == 0 {
		n.log.Info().Msg("stopped")
	}
	return errors.Join(errs...)
}

// close stops everything that is running, in reverse start order.
func (n *Node) close() {
	if n.pprof != nil {
		_ = n.pprof.Close()
	}
	if n.gateway != nil {
		n.gateway.Close() // ends the dashboard's event streams, which would hold Shutdown
	}
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.http.ShutdownWithContext(ctx)
		// A shutdown that came before Serve took the listener closed
		// nothing (fasthttp closes only the listeners it serves), and Serve
		// would accept forever: closing it here ends Serve either way.
		_ = n.httpLn.Close()
		cancel()
		<-n.httpErr
	}
	for _, sub := range n.events {
		_ = sub.Unsubscribe()
	}
	n.resyncMu.Lock()
	n.closing = true
	n.resyncMu.Unlock()
	n.resyncs.Wait()
	n.natsGate.open()
	n.httpGate.open()
	if n.jobs != nil { // a node that failed to start: nothing runs yet
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.jobs.stop(ctx)
		cancel()
	}
	if n.admin != nil {
		n.admin.Stop()
	}
	n.chaos.stop()
	if n.hive != nil {
		n.hive.Stop()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil { // writes the last breaker states
			n.log.Warn().Err(err).Msg("breaker states not all written to JetStream")
		}
	}
	if n.hooks != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.hooks.Close(ctx); err != nil {
			n.log.Warn().Err(err).Msg("alerts not delivered to webhooks before shutdown")
		}
		cancel()
	}
	if n.nc != nil {
		drained := make(chan struct{})
		n.nc.SetClosedHandler(func(*nats.Conn) { close(drained) })
		if err := n.nc.Drain(); err != nil {
			n.nc.Close()
		} else {
			select {
			case <-drained:
			case <-time.After(10 * time.Second):
				n.nc.Close()
			}
		}
	}
	if n.embed != nil {
		n.embed.Shutdown()
		n.embed.WaitForShutdown()
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscanf(p, "%d", &port); err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}
