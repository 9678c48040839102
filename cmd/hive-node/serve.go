package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/gateway"
	"github.com/cmmv-hive/resilience/notify"
	"github.com/cmmv-hive/resilience/persistence"
)

func serve(args []string, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadConfig(f, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := startNode(f, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop() // a second signal kills the process at once
	return n.shutdown()
}

// loadConfig reads --config-dir, falling back to the built-in defaults when
// the default directory does not exist.
func loadConfig(f *serveFlags, log zerolog.Logger) (*config.Config, error) {
	if !f.configDirSet {
		if _, err := os.Stat(filepath.Join(f.configDir, config.ModelsFile)); errors.Is(err, os.ErrNotExist) {
			log.Info().Msg("no ./config directory: using the built-in default configuration")
			return config.Defaults()
		}
	}
	return config.Load(f.configDir)
}

// node is a running hive node and everything it owns, in start order.
type node struct {
	log     zerolog.Logger
	nodeID  string
	grace   time.Duration
	embed   *server.Server // nil when joining an existing deployment
	nc      *nats.Conn
	hive    *actors.Hive
	ingress *bus.Ingress
	admin   *bus.Admin
	chaos   *nodeChaos // nil unless chaos.enabled
	jobs    *nodeJobs  // nil unless jobs run here
	replies *bus.ReplyGuard

	draining atomic.Bool // set by the drain command

	store             *persistence.Store // nil without persistence
	persistenceDetail string
	metrics           *gateway.Metrics
	hooks             *notify.Webhooks     // nil without webhooks
	events            []*nats.Subscription // other nodes' health, for recovery
	http              *http.Server
	pprof             *http.Server // --pprof-addr
	httpErr           chan error
	gateway           *gateway.Handler // closed before the HTTP server shuts down
	natsURL           string           // where clients reach NATS, for the startup log
	httpURL           string
	served            bus.Dispatcher // the hive, with idempotency keys when jobs are on
}

// startNode starts the embedded NATS server (without --nats-url), connects,
// starts the actors, the NATS service and HTTP. On error everything started
// so far is stopped again.
func startNode(f *serveFlags, cfg *config.Config, log zerolog.Logger) (*node, error) {
	log = log.With().Str("node", f.nodeID).Logger()
	n := &node{log: log, nodeID: f.nodeID, grace: cfg.Global.ShutdownGrace}
	if f.shutdownGrace > 0 {
		n.grace = f.shutdownGrace
	}
	if err := n.start(f, cfg); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *node) start(f *serveFlags, cfg *config.Config) error {
	log := n.log

	n.chaos = newNodeChaos(cfg.Global.Chaos, log)
	if err := n.connect(f, log); err != nil {
		return err
	}
	hc, err := hiveConfig(cfg, f.nodeID, log)
	if err != nil {
		return err
	}
	n.chaos.wrap(hc.Models) // faults in front of every provider when chaos is on
	subjects := bus.NewSubjects(cfg.Global.SubjectPrefix)
	if err := n.openPersistence(cfg.Global.Persistence, subjects); err != nil {
		return err
	}
	if n.store != nil {
		hc.Store = n.store.Breakers()
	}
	models := make([]string, len(hc.Models))
	for i, m := range hc.Models {
		models[i] = m.Name
	}
	n.metrics = gateway.NewMetrics(f.nodeID, models...)
	n.replies = bus.NewReplyGuard(cfg.Global.ReplyPrefixes, log, n.metrics.RefusedReply)
	replies := n.replies
	events := bus.NewEvents(n.nc, subjects, log)
	if cfg.Global.Events.Encoding == "protobuf" {
		events = events.WithEncoding(bus.Protobuf)
	}
	pub := &fanout{sinks: []actors.Publisher{events, n.metrics}}
	if n.hooks, err = newWebhooks(cfg.Global.Alerts.Webhooks, log); err != nil {
		return err
	}
	if n.hooks != nil {
		pub.alerts = append(pub.alerts, n.hooks)
	}
	hc.Publisher = pub
	n.hive, err = actors.New(hc)
	if err != nil {
		return err
	}
	// Recovery also sees other nodes' health and breaker events.
	if n.events, err = bus.SubscribeHealth(n.nc, subjects, log, func(ev proto.Message) { n.hive.Observe(ev) }); err != nil {
		return fmt.Errorf("subscribe to health events: %w", err)
	}
	jobs, err := n.openJobs(cfg.Global.Jobs, cfg.Global.Persistence, subjects)
	if err != nil {
		return err
	}
	// Idempotency keys are honoured on both ingresses when jobs are on.
	var served bus.Dispatcher = n.hive
	if jobs != nil {
		served = jobs.Idempotent(n.hive)
	}
	n.served = served
	n.ingress, err = bus.StartIngress(bus.IngressConfig{
		Conn:       n.nc,
		Subjects:   subjects,
		Node:       f.nodeID,
		Version:    version,
		Dispatcher: n.metrics.Wrap("nats", served),
		Logger:     log,
		Replies:    replies,
		Models:     cfg.Order,
	})
	if err != nil {
		return err
	}
	n.admin, err = bus.StartAdmin(bus.AdminConfig{
		Conn:     n.nc,
		Subjects: subjects,
		Node:     f.nodeID,
		Handler:  &nodeAdmin{n: n, started: time.Now()},
		Logger:   log,
		Replies:  replies,
		Events:   events,
	})
	if err != nil {
		return err
	}
	if err := n.chaos.start(n.nc, subjects, f.nodeID, replies, events); err != nil {
		return err
	}
	if err := n.startJobs(jobs, cfg.Global.Jobs, subjects, n.metrics.Wrap("jobs", n.hive), replies); err != nil {
		return err
	}
	if err := n.listenHTTP(f.httpAddr, f.nodeID, cfg); err != nil {
		return err
	}
	if err := n.servePprof(f.pprofAddr); err != nil {
		return err
	}
	log.Info().
		Str("nats", n.natsURL).
		Str("subject", subjects.Infer()).
		Str("http", n.httpURL).
		Int("models", len(hc.Models)).
		Str("version", version).
		Msg("hive node serving")
	return nil
}

func (n *node) connect(f *serveFlags, log zerolog.Logger) error {
	opts := f.natsFlags.options("hive-node "+f.nodeID, log)
	if f.natsURL != "" {
		opts.Partition = n.chaos.partitionFor() // nil unless chaos is on
		nc, err := bus.Connect(opts)
		if err != nil {
			return err
		}
		n.nc, n.natsURL = nc, bus.Redact(nc.ConnectedUrl())
		return nil
	}
	host, port, err := splitHostPort(f.natsListen)
	if err != nil {
		return usageError{fmt.Sprintf("--nats-listen: %v", err)}
	}
	n.embed, err = bus.StartEmbedded(bus.EmbeddedOptions{
		Host:       host,
		Port:       port,
		StoreDir:   f.dataDir, // nats-server adds "jetstream"
		ServerName: f.nodeID,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	n.natsURL = n.embed.ClientURL()
	n.nc, err = bus.ConnectInProcess(n.embed, opts)
	return err
}

func (n *node) listenHTTP(addr, node string, cfg *config.Config) error {
	if addr == "off" || addr == "" {
		return nil
	}
	token := adminToken(n.log)
	handler, err := gateway.New(gateway.Config{
		Node:       node,
		Dispatcher: n.served,
		Jobs:       n.httpJobs(),
		Models:     func() []string { return cfg.Order },
		Readiness:  n,
		Metrics:    n.metrics,
		Logger:     n.log,
		Cluster:    cluster{nc: n.nc, subjects: bus.NewSubjects(cfg.Global.SubjectPrefix)},
		AdminToken: token,
	})
	if err != nil {
		return err
	}
	n.gateway = handler
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen %s: %w (choose another with --http-addr, or --http-addr off)", addr, err)
	}
	n.httpURL = "http://" + ln.Addr().String()
	n.log.Info().Str("url", n.httpURL+"/").Bool("admin_actions", token != "").Msg("dashboard")
	n.http = gateway.Server(handler)
	n.httpErr = make(chan error, 1)
	go func() { n.httpErr <- n.http.Serve(ln) }()
	return nil
}

// Ready implements gateway.Readiness.
func (n *node) Ready() error {
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

// shutdown stops taking requests, lets in-flight ones finish up to the
// grace period, stops the actors (answering whatever is left), then drains
// NATS and stops the embedded server.
func (n *node) shutdown() error {
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
func (n *node) close() {
	if n.pprof != nil {
		_ = n.pprof.Close()
	}
	if n.gateway != nil {
		n.gateway.Close() // ends the dashboard's event streams, which would hold Shutdown
	}
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.http.Shutdown(ctx)
		cancel()
		<-n.httpErr
	}
	for _, sub := range n.events {
		_ = sub.Unsubscribe()
	}
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
