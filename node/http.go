package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/gateway"
)

// listenHTTP serves the gateway (chat completions, models, health,
// metrics, the dashboard) on Config.HTTPAddr, unless it is "" or "off".
func (n *Node) listenHTTP(subjects bus.Subjects) error {
	addr := n.cfg.HTTPAddr
	if addr == "off" || addr == "" {
		return nil
	}
	order := n.cfg.Files.Order
	handler, err := gateway.New(gateway.Config{
		Node:       n.cfg.ID,
		Dispatcher: n.httpGate.dispatcher(n.served),
		Jobs:       n.httpJobs(),
		Models:     func() []string { return order },
		Readiness:  n,
		Metrics:    n.metrics,
		Logger:     n.log,
		Cluster:    cluster{nc: n.nc, subjects: subjects},
		AdminToken: n.cfg.AdminToken,
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
	n.log.Info().Str("url", n.httpURL+"/").Bool("admin_actions", n.cfg.AdminToken != "").Msg("dashboard")
	n.http = gateway.Server(handler)
	n.httpErr = make(chan error, 1)
	n.httpLn = ln
	go func() { n.httpErr <- n.http.Serve(ln) }()
	return nil
}

// servePprof serves Go's profiles on addr, on their own listener so that
// they are never reachable through the gateway's address.
func (n *Node) servePprof(addr string) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: listen %s: %w", addr, err)
	}
	n.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.pprof.Serve(ln) }()
	n.log.Warn().Str("addr", "http://"+ln.Addr().String()+"/debug/pprof/").Msg("serving profiles (--pprof-addr)")
	return nil
}
