package bus

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// Defaults of EmbeddedOptions.
const (
	DefaultEmbeddedHost = "127.0.0.1"
	DefaultEmbeddedPort = 4222
	// embeddedReadyTimeout bounds the wait for the server to accept clients.
	embeddedReadyTimeout = 10 * time.Second
	// readyPoll is how often the ready wait also checks for a fatal start
	// error, so a failure is reported at once rather than after the bound.
	readyPoll = 100 * time.Millisecond
)

// EmbeddedOptions configures the in-process NATS server hive-node runs when
// no --nats-url is given.
type EmbeddedOptions struct {
	// Host is the client listen address; default 127.0.0.1 (loopback only).
	Host string
	// Port is the client port; 0 means 4222, -1 picks a free port.
	Port int
	// StoreDir is the JetStream store directory; required.
	StoreDir string
	// ServerName names the server in monitoring and JetStream; empty lets
	// nats-server use its generated ID.
	ServerName string
	// Logger receives the server's own log lines at debug, info, warn and
	// error. The zero value discards them.
	Logger zerolog.Logger
}

// StartEmbedded starts an in-process NATS server with JetStream, without
// signal handlers, and waits up to 10 s until it accepts clients. The caller
// owns the server: Shutdown and WaitForShutdown stop it and its goroutines.
// A taken port gives an error matching ErrPortInUse that suggests
// --nats-listen and --nats-url; a missing StoreDir is an error too.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required (the JetStream store)")
	}
	if o.Host == "" {
		o.Host = DefaultEmbeddedHost
	}
	if o.Port == 0 {
		o.Port = DefaultEmbeddedPort
	}
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	// Check the port first: nats-server only logs a listen failure, and
	// the error from net.Listen says exactly what went wrong.
	if o.Port > 0 {
		if err := probeListen(addr); err != nil {
			return nil, err
		}
	}

	s, err := server.NewServer(&server.Options{
		ServerName: o.ServerName,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	fatal := make(chan string, 1)
	log := &serverLog{log: o.Logger.With().Str("component", "nats-server").Logger(), fatal: fatal}
	s.SetLoggerV2(log, levelEnabled(o.Logger, zerolog.DebugLevel), false, false)
	s.Start()

	if err := waitReady(s, fatal); err != nil {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats on %s: %w", addr, err)
	}
	return s, nil
}

// probeListen reports whether addr can be listened on, with a clear error
// when the port is taken.
func probeListen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("embedded nats: %s: %w: another NATS server or hive-node is probably running; "+
				"pick another address with --nats-listen, or join the running server with --nats-url", addr, ErrPortInUse)
		}
		return fmt.Errorf("embedded nats: listen %s: %w", addr, err)
	}
	return l.Close()
}

// waitReady waits until s accepts clients, a fatal start error is logged, or
// the bound passes.
func waitReady(s *server.Server, fatal <-chan string) error {
	deadline := time.Now().Add(embeddedReadyTimeout)
	for {
		select {
		case msg := <-fatal:
			if strings.Contains(msg, "address already in use") {
				return fmt.Errorf("%s: %w: pick another address with --nats-listen, or join the running server with --nats-url", msg, ErrPortInUse)
			}
			return errors.New(msg)
		default:
		}
		if s.ReadyForConnections(readyPoll) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready for connections after %s", embeddedReadyTimeout)
		}
	}
}

// levelEnabled reports whether l writes events at lvl.
func levelEnabled(l zerolog.Logger, lvl zerolog.Level) bool {
	e := l.WithLevel(lvl)
	defer e.Discard()
	return e.Enabled()
}

// serverLog bridges nats-server's Logger to zerolog. Fatal lines are logged
// as errors and reported to StartEmbedded instead of exiting the process.
type serverLog struct {
	log   zerolog.Logger
	fatal chan<- string
}

var _ server.Logger = (*serverLog)(nil)

// Noticef logs at debug: the server's banner and routine notices are not news to a hive operator.
func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }

// Warnf logs at warn.
func (l *serverLog) Warnf(format string, v ...any) { l.log.Warn().Msgf(format, v...) }

// Errorf logs at error.
func (l *serverLog) Errorf(format string, v ...any) { l.log.Error().Msgf(format, v...) }

// Debugf logs at debug.
func (l *serverLog) Debugf(format string, v ...any) { l.log.Debug().Msgf(format, v...) }

// Tracef logs at trace; the server only traces when asked, and we never ask.
func (l *serverLog) Tracef(format string, v ...any) { l.log.Trace().Msgf(format, v...) }

// Fatalf logs at error and hands the message to StartEmbedded, which stops
// the server; the process keeps running so that run() can return the error.
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Bool("fatal", true).Msg(msg)
	select {
	case l.fatal <- msg:
	default: // one fatal error is enough to stop
	}
}
