package node

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/notify"
)

// alertSink is anything that takes alerts besides NATS: the webhooks.
type alertSink interface {
	Alert(*messages.Alert)
}

// fanout hands every event to NATS and to the metrics, and alerts also to
// the webhooks. Each sink returns at once (see actors.Publisher).
type fanout struct {
	sinks  []actors.Publisher
	alerts []alertSink
}

func (f *fanout) Breaker(ev *messages.BreakerTransition) {
	for _, s := range f.sinks {
		s.Breaker(ev)
	}
}

func (f *fanout) Health(ev *messages.HealthChanged) {
	for _, s := range f.sinks {
		s.Health(ev)
	}
}

func (f *fanout) Recovery(ev *messages.RecoveryEvent) {
	for _, s := range f.sinks {
		s.Recovery(ev)
	}
}

func (f *fanout) Alert(ev *messages.Alert) {
	for _, s := range f.sinks {
		s.Alert(ev)
	}
	for _, s := range f.alerts {
		s.Alert(ev)
	}
}

// newWebhooks builds the webhook sender of resilience.yml's
// alerts.webhooks; nil when there is none. A webhook whose urlEnv is unset
// stops the start, as a missing API key does; its URL is never echoed.
func newWebhooks(hooks []config.Webhook, log zerolog.Logger) (*notify.Webhooks, error) {
	if len(hooks) == 0 {
		return nil, nil
	}
	out := make([]notify.Hook, 0, len(hooks))
	for i, h := range hooks {
		url := h.URL
		if h.URLEnv != "" {
			if url = os.Getenv(h.URLEnv); url == "" {
				return nil, fmt.Errorf("alerts.webhooks[%d]: environment variable %s is not set (it holds the webhook URL)", i, h.URLEnv)
			}
		}
		out = append(out, notify.Hook{URL: url, Format: h.Format, MinSeverity: h.MinSeverity,
			Timeout: h.Timeout, Retries: h.Retries})
	}
	return notify.New(out, log), nil
}
