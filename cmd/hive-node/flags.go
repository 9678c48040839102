package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cmmv-hive/resilience/bus"
)

// serveFlags are the settings of `hive-node serve`. Secrets are not flags:
// NATS passwords and tokens come from the environment only.
type serveFlags struct {
	configDir    string
	configDirSet bool
	natsFlags
	natsListen    string
	nodeID        string
	httpAddr      string
	pprofAddr     string
	dataDir       string
	logLevel      string
	logFormat     string
	shutdownGrace time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configDir, "config-dir", "config", "directory holding resilience.yml and models-resilience.yml; when the default ./config is missing, the built-in defaults (five sim models) are used")
	f.natsFlags.register(fs, "", "NATS server URL(s), comma-separated, to join an existing deployment; empty starts an embedded server with JetStream")
	fs.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server (only without --nats-url); port -1 picks a free one")
	fs.StringVar(&f.nodeID, "node-id", defaultNodeID(), "this node's name in subjects, events and replies (letters, digits, - and _)")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", `HTTP listen address: the OpenAI-compatible API, /metrics, /healthz, /readyz and the dashboard; "off" disables HTTP`)
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "serve Go's net/http/pprof profiles on this address (such as 127.0.0.1:6060) for performance work; empty: off")
	fs.StringVar(&f.dataDir, "data-dir", "data", "directory for the embedded server's JetStream store")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "console", "log format: console (readable; coloured only on a terminal, and NO_COLOR turns that off) or json (one object per line, for files and log collectors)")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 0, "how long shutdown waits for in-flight requests (default: shutdownGrace from resilience.yml, 10s)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: hive-node serve [flags]

Runs a node: one supervised actor per configured model, the router, the
hive.v1.infer NATS service and the HTTP endpoints. Stops gracefully on
SIGINT or SIGTERM: it stops taking requests, lets in-flight ones finish
(up to the shutdown grace), then drains its NATS connection.

`+envHelp+`  model API keys                       as named by apiKeyEnv in models-resilience.yml

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))}
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "config-dir" {
			f.configDirSet = true
		}
	})
	if err := bus.ValidToken("node", f.nodeID); err != nil {
		return nil, usageError{fmt.Sprintf("--node-id: %v", err)}
	}
	switch f.logFormat {
	case "console", "json":
	default:
		return nil, usageError{fmt.Sprintf("--log-format: %q is not console or json", f.logFormat)}
	}
	if f.shutdownGrace < 0 {
		return nil, usageError{"--shutdown-grace: must not be negative"}
	}
	return f, nil
}

// defaultNodeID is the host name made into a valid subject token.
func defaultNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	h, _, _ = strings.Cut(h, ".")
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
