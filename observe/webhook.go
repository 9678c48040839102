package observe

import (
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

// Webhook is one HTTP endpoint alerts are posted to. The URL comes from URL
// or, when it holds a secret (a Slack incoming webhook does), from the
// environment variable URLEnv names; that URL is never logged.
type Webhook struct {
	URL         string                  // http(s), not secret; or
	URLEnv      string                  // the environment variable holding the URL
	Format      string                  // WebhookJSON or WebhookSlack
	MinSeverity messages.Alert_Severity // alerts below it are not posted
	Timeout     time.Duration           // of one delivery attempt
	Retries     int                     // further attempts after a failed one
}

// Webhook formats.
const (
	// WebhookJSON posts the Alert as protojson.
	WebhookJSON = "json"
	// WebhookSlack posts a Slack-compatible {"text": ...} body.
	WebhookSlack = "slack"
)

// DefaultWebhook is a webhook's settings before its own: JSON, warnings
// and above, 5 s per attempt, 3 retries.
func DefaultWebhook() Webhook {
	return Webhook{Format: WebhookJSON, MinSeverity: messages.Alert_warning, Timeout: 5 * time.Second, Retries: 3}
}
