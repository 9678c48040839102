package config

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/observe"
)

// Alerts is resilience.yml's alerts: block: the alert rules and the
// webhooks (see observe, where they and their defaults are defined).
type Alerts = observe.Alerts

// AlertRules holds one AlertRule per rule; its Named lists them.
type AlertRules = observe.Rules

// AlertRule is one rule's settings. In resilience.yml: enabled (default
// true), severity (info | warning | critical), threshold (see
// observe.Rules; a duration for slow_responses), window (> 0), minCalls
// (>= 1), hysteresis (>= 0), cooldown (>= 0), escalateAfter (>= 0); the
// defaults are observe.Defaults'.
type AlertRule = observe.Rule

// Webhook is one HTTP endpoint alerts are posted to. In resilience.yml: url
// (http or https, not secret) or urlEnv (the variable holding a secret
// URL), format (json | slack), minSeverity, timeout (> 0), retries (>= 0);
// the defaults are observe.DefaultWebhook's.
type Webhook = observe.Webhook

// Persistence configures JetStream: the audit stream over every event and
// the key-value bucket of breaker states.
type Persistence struct {
	Enabled     bool          // enabled: use JetStream when the server has it, default true
	AuditMaxAge time.Duration // auditMaxAge: events older than this are dropped, default 720h (30 days), > 0
	AuditMaxMB  int           // auditMaxMB: size of the audit stream in MiB before the oldest events go, default 1024, >= 1
	Replicas    int           // replicas: copies of the stream and bucket in a JetStream cluster, default 1, 1..5
}

// severities are the alert severities, least to most severe.
var severities = []string{"info", "warning", "critical"}

var webhookFormats = []string{observe.WebhookJSON, observe.WebhookSlack}

func defaultPersistence() Persistence {
	return Persistence{Enabled: true, AuditMaxAge: 720 * time.Hour, AuditMaxMB: 1024, Replicas: 1}
}

func (d *decoder) alertsFields(a *Alerts) map[string]field {
	return map[string]field{
		"enabled":  d.flag(&a.Enabled),
		"interval": d.duration(&a.Interval, positive),
		"rules":    d.block(d.alertRuleBlocks(&a.Rules)),
		"webhooks": d.webhooks(&a.Webhooks),
	}
}

func (d *decoder) alertRuleBlocks(r *AlertRules) map[string]field {
	fs := make(map[string]field)
	for _, nr := range r.Named() {
		fs[nr.Name] = d.block(d.alertRuleFields(nr.Name, nr.Rule))
	}
	return fs
}

func (d *decoder) alertRuleFields(name string, r *AlertRule) map[string]field {
	fs := map[string]field{
		"enabled":       d.flag(&r.Enabled),
		"severity":      d.severity(&r.Severity),
		"window":        d.duration(&r.Window, positive),
		"minCalls":      d.count(&r.MinCalls, 1),
		"hysteresis":    d.number(&r.Hysteresis, span{Lo: 0, Hi: 1e9}),
		"cooldown":      d.duration(&r.Cooldown, zeroOK),
		"escalateAfter": d.duration(&r.EscalateAfter, zeroOK),
	}
	switch name {
	case observe.RuleModelUnavailable, observe.RuleOpenBreakers:
		fs["threshold"] = func(v *yaml.Node, path string) {
			var n int
			d.count(&n, 1)(v, path)
			if n >= 1 {
				r.Threshold = float64(n)
			}
		}
	case observe.RuleHighFailureRate, observe.RuleLowSuccessRate:
		fs["threshold"] = d.number(&r.Threshold, fractionAbove0)
	case observe.RuleSlowResponses:
		fs["threshold"] = func(v *yaml.Node, path string) {
			var t time.Duration
			d.duration(&t, positive)(v, path)
			if t > 0 {
				r.Threshold = t.Seconds()
			}
		}
	}
	return fs
}

// webhookFields decodes one webhook; url and urlEnv are checked together
// by webhooks.
func (d *decoder) webhookFields(w *Webhook) map[string]field {
	return map[string]field{
		"url":         d.url(&w.URL),
		"urlEnv":      d.envVar(&w.URLEnv),
		"format":      d.choice(&w.Format, "format", webhookFormats),
		"minSeverity": d.severity(&w.MinSeverity),
		"timeout":     d.duration(&w.Timeout, positive),
		"retries":     d.count(&w.Retries, 0),
	}
}

// severity decodes an alert severity by name.
func (d *decoder) severity(dst *messages.Alert_Severity) field {
	return func(v *yaml.Node, path string) {
		var name string
		d.choice(&name, "severity", severities)(v, path)
		if sev, ok := messages.Alert_Severity_value[name]; ok && name != "" {
			*dst = messages.Alert_Severity(sev)
		}
	}
}

// webhooks decodes a list of webhook mappings, each with url or urlEnv.
func (d *decoder) webhooks(dst *[]Webhook) field {
	return func(v *yaml.Node, path string) {
		v = yamlnode.Resolve(v)
		if yamlnode.IsNull(v) {
			*dst = nil
			return
		}
		if v.Kind != yaml.SequenceNode {
			d.errorf(v, path, "must be a list of webhooks (each a mapping with url or urlEnv), not %s", yamlnode.KindName(v))
			return
		}
		out := make([]Webhook, 0, len(v.Content))
		for i, item := range v.Content {
			w := observe.DefaultWebhook()
			at := itemPath(path, i)
			if yamlnode.Resolve(item).Kind != yaml.MappingNode {
				d.errorf(item, at, "must be a mapping with url or urlEnv, not %s", yamlnode.KindName(yamlnode.Resolve(item)))
				continue
			}
			d.fields(item, at, d.webhookFields(&w))
			if (w.URL == "") == (w.URLEnv == "") && !d.failed(at+".url") && !d.failed(at+".urlEnv") {
				d.errorf(item, at, "give exactly one of url and urlEnv (urlEnv when the URL holds a secret)")
			}
			out = append(out, w)
		}
		*dst = out
	}
}

func (d *decoder) persistenceFields(p *Persistence) map[string]field {
	return map[string]field{
		"enabled":     d.flag(&p.Enabled),
		"auditMaxAge": d.duration(&p.AuditMaxAge, positive),
		"auditMaxMB":  d.count(&p.AuditMaxMB, 1),
		"replicas":    d.countIn(&p.Replicas, 1, 5),
	}
}
