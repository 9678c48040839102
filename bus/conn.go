package bus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Environment variables read by ConnectOptions.FromEnv. Secrets come from the
// environment, never from flags, so they stay out of process listings.
const (
	EnvUser     = "HIVE_NATS_USER"
	EnvPassword = "HIVE_NATS_PASSWORD"
	EnvToken    = "HIVE_NATS_TOKEN"
)

// Defaults of ConnectOptions and of the reconnect backoff.
const (
	DefaultConnectTimeout = 5 * time.Second
	reconnectBase         = 250 * time.Millisecond
	reconnectMax          = 5 * time.Second
	redacted              = "xxxxx"
)

// ConnectOptions configures a client connection to the embedded server or
// to an existing NATS deployment (a cluster, TLS, credentials).
type ConnectOptions struct {
	// URLs is a comma-separated list of nats:// or tls:// server URLs;
	// empty means nats://127.0.0.1:4222. Ignored by ConnectInProcess.
	URLs string
	// Name is the connection name shown by the server, e.g. "hive-node n1".
	Name string
	// CredsFile is a NATS .creds file (user JWT and nkey seed).
	CredsFile string
	// NKeyFile is an nkey seed file, for nkey authentication.
	NKeyFile string
	// User and Password authenticate with a user name; FromEnv fills them
	// from HIVE_NATS_USER and HIVE_NATS_PASSWORD. Never logged.
	User, Password string
	// Token authenticates with a token; FromEnv fills it from
	// HIVE_NATS_TOKEN. Never logged.
	Token string
	// TLSCA is a CA bundle file that verifies the server; TLSCert and
	// TLSKey are the client certificate and key files, set both or neither.
	TLSCA, TLSCert, TLSKey string
	// InboxPrefix replaces "_INBOX" in the connection's inbox subjects
	// (replies to its requests), for deployments that give each user a
	// private inbox: "_INBOX.app" makes inboxes "_INBOX.app.<id>", which
	// the server lets only that user read (see deploy/nats-server.conf).
	// No wildcards, no trailing dot. Empty keeps "_INBOX".
	InboxPrefix string
	// ConnectTimeout bounds each dial; default 5 s.
	ConnectTimeout time.Duration
	// Logger receives connection events: disconnects, reconnects, close,
	// lame duck mode and asynchronous errors. The zero value discards them.
	Logger zerolog.Logger
	// Partition, when set, lets chaos cut the connection off NATS and
	// heal it (see Partition); Connect attaches the connection to it.
	// Ignored by ConnectInProcess: an in-process connection has no
	// network to cut.
	Partition *Partition
}

// FromEnv fills User, Password and Token from HIVE_NATS_USER,
// HIVE_NATS_PASSWORD and HIVE_NATS_TOKEN, each only when it is unset.
func (o *ConnectOptions) FromEnv() {
	fill := func(dst *string, env string) {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
	}
	fill(&o.User, EnvUser)
	fill(&o.Password, EnvPassword)
	fill(&o.Token, EnvToken)
}

// Connect connects to o.URLs. The first connection must succeed; after that
// the client reconnects forever with a capped, jittered exponential backoff
// and logs each disconnect (with its error), reconnect (with the server URL,
// credentials redacted), close and asynchronous error. Errors never contain
// the password, the token or credentials embedded in a URL; they still
// match the nats.go sentinels (nats.ErrNoServers...) through errors.Is.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	urls := o.URLs
	if urls == "" {
		urls = nats.DefaultURL
	}
	opts, err := o.natsOptions()
	if err != nil {
		return nil, o.redactErr(fmt.Errorf("connect %s: %w", Redact(urls), err))
	}
	if o.Partition != nil {
		opts = append(opts, nats.SetCustomDialer(dialer{p: o.Partition, d: net.Dialer{Timeout: o.timeout()}}))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, o.redactErr(fmt.Errorf("connect %s: %w", Redact(urls), err))
	}
	if o.Partition != nil {
		o.Partition.attach(nc)
	}
	return nc, nil
}

// ConnectInProcess connects to s without a socket (nats.InProcessServer),
// with the same options and event logging as Connect; URLs is ignored.
func ConnectInProcess(s *server.Server, o ConnectOptions) (*nats.Conn, error) {
	opts, err := o.natsOptions()
	if err != nil {
		return nil, o.redactErr(fmt.Errorf("connect in-process: %w", err))
	}
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(s))...)
	if err != nil {
		return nil, o.redactErr(fmt.Errorf("connect in-process: %w", err))
	}
	return nc, nil
}

// natsOptions turns o into nats.go options, event handlers included.
func (o ConnectOptions) natsOptions() ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.timeout()),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return reconnectDelayFunc(attempts) }),
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("NKeyFile %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.User != "" || o.Password != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.InboxPrefix != "" {
		if strings.ContainsAny(o.InboxPrefix, "*> \t") || strings.HasSuffix(o.InboxPrefix, ".") {
			return nil, fmt.Errorf("inbox prefix %q: no wildcards, spaces or trailing dot (such as \"_INBOX.app\")", o.InboxPrefix)
		}
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	switch {
	case o.TLSCert != "" && o.TLSKey != "":
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	case o.TLSCert != "" || o.TLSKey != "":
		return nil, errors.New("TLSCert and TLSKey: set both or neither")
	}
	return append(opts, o.eventHandlers()...), nil
}

// timeout bounds each dial: ConnectTimeout, or its default.
func (o ConnectOptions) timeout() time.Duration {
	if o.ConnectTimeout <= 0 {
		return DefaultConnectTimeout
	}
	return o.ConnectTimeout
}

// eventHandlers log connection events. Each handler runs on nats.go's
// callback goroutine and only logs.
func (o ConnectOptions) eventHandlers() []nats.Option {
	log := o.Logger
	scrub := o.scrub
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			ev := log.Warn()
			if nc.IsClosed() {
				ev = log.Debug() // we closed it: not news
			}
			if err != nil {
				ev = ev.Str("err", scrub(err.Error()))
			}
			ev.Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", Redact(nc.ConnectedUrl())).Str("server", nc.ConnectedServerName()).Msg("nats reconnected")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			ev := log.Info()
			if err := nc.LastError(); err != nil {
				ev = ev.Str("err", scrub(err.Error()))
			}
			ev.Msg("nats connection closed")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn().Str("url", Redact(nc.ConnectedUrl())).Msg("nats server entering lame duck mode")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Str("err", scrub(err.Error()))
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats async error")
		}),
	}
}

// reconnectDelayFunc is reconnectDelay; a test sets it to an hour to show
// that something else (a partition's heal) brought the connection back.
var reconnectDelayFunc = reconnectDelay

// reconnectDelay is the wait after every server in the pool failed
// attempts times in a row: 250 ms doubling to 5 s, with +-10 % jitter so
// that nodes do not reconnect in step.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMax
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 5 {
		d = min(reconnectBase<<(attempts-1), reconnectMax)
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// userinfo matches the user information of a URL, anywhere in a text.
// A '/' is allowed in it: a password holding one must not slip through,
// and NATS URLs have no path that could be mistaken for user information.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^\s@,"'<>]+)@`)

// Redact hides credentials in a URL or a comma-separated list of URLs (or
// any text holding them): "nats://u:p@h" becomes "nats://u:xxxxx@h", and a
// token URL "nats://t@h" becomes "nats://xxxxx@h". Other text is unchanged.
func Redact(url string) string {
	return userinfo.ReplaceAllStringFunc(url, func(m string) string {
		sub := userinfo.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		if user, _, ok := strings.Cut(info, ":"); ok {
			return scheme + user + ":" + redacted + "@"
		}
		return scheme + redacted + "@"
	})
}

// scrub removes o's secrets and URL credentials from a text.
func (o ConnectOptions) scrub(s string) string {
	s = Redact(s)
	for _, secret := range []string{o.Password, o.Token} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// redactErr returns err with secrets removed from its text.
func (o ConnectOptions) redactErr(err error) error {
	return &redactedError{msg: o.scrub(err.Error()), err: err}
}

// redactedError carries a scrubbed message. It has no Unwrap, so the
// original text cannot leak through the chain, but Is still matches the
// sentinels the original wraps.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
