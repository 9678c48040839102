package main

import (
	"flag"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/bus"
)

// natsFlags are the connection flags every command that talks to NATS
// takes. Secrets are not flags: user, password and token come from the
// environment (see bus.ConnectOptions.FromEnv).
type natsFlags struct {
	natsURL   string
	natsCreds string
	natsNKey  string
	natsCA    string
	natsCert  string
	natsKey   string
	inbox     string
	prefix    string
}

// register adds the flags to fs; urlHelp explains --nats-url for the command.
func (f *natsFlags) register(fs *flag.FlagSet, urlDefault, urlHelp string) {
	fs.StringVar(&f.natsURL, "nats-url", urlDefault, urlHelp)
	fs.StringVar(&f.natsCreds, "nats-creds", "", "NATS credentials (.creds) file")
	fs.StringVar(&f.natsNKey, "nats-nkey", "", "NATS nkey seed file")
	fs.StringVar(&f.natsCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server")
	fs.StringVar(&f.natsCert, "nats-tls-cert", "", "client certificate file for NATS TLS")
	fs.StringVar(&f.natsKey, "nats-tls-key", "", "client key file for NATS TLS")
	fs.StringVar(&f.inbox, "nats-inbox-prefix", "", "private inbox prefix for replies to this connection, such as _INBOX.ops (see deploy/nats-server.conf); default _INBOX")
}

// options returns the connection options, with the secrets from the
// environment.
func (f *natsFlags) options(name string, log zerolog.Logger) bus.ConnectOptions {
	o := bus.ConnectOptions{
		URLs:      f.natsURL,
		Name:      name,
		CredsFile: f.natsCreds,
		NKeyFile:  f.natsNKey,
		TLSCA:     f.natsCA,
		TLSCert:   f.natsCert,
		TLSKey:    f.natsKey,
		Logger:    log,

		InboxPrefix: f.inbox,
	}
	o.FromEnv()
	return o
}

const envHelp = `Environment:
  HIVE_NATS_USER, HIVE_NATS_PASSWORD   NATS user and password
  HIVE_NATS_TOKEN                      NATS token
`
