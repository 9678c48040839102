package config

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
)

// Alerts configures the alert rules of resilience.yml's alerts: block. Each
// rule fires once when its condition holds, escalates once when it still
// holds after EscalateAfter, resolves once when the condition is gone by
// more than its hysteresis, and does not fire again within its cooldown.
type Alerts struct {
	Enabled  bool          // enabled: evaluate the rules, default true
	Interval time.Duration // interval: time between two evaluations, default 1s, > 0
	Rules    AlertRules    // rules: block, one block per rule
	Webhooks []Webhook     // webhooks: list, where alerts are sent besides NATS, default none
}

// The alert rule names: the last token of hive.v1.events.alert.<severity>.<rule>.
const (
	RuleModelUnavailable = "model_unavailable"
	RuleHighFailureRate  = "high_failure_rate"
	RuleLowSuccessRate   = "low_success_rate"
	RuleSlowResponses    = "slow_responses"
	RuleOpenBreakers     = "open_breakers"
	RuleSupervisorGaveUp = "supervisor_gave_up"
)

// AlertRules holds one AlertRule per rule. Threshold means, per rule:
// model_unavailable, consecutive failed calls of a model (default 3);
// high_failure_rate, a model's failure rate over the window (default 0.2);
// low_success_rate, the node's success rate over the window, alerting below it (default 0.9);
// slow_responses, a model's average response time in seconds over the window (default 5, written 5s);
// open_breakers, breakers refusing traffic at once on the node: open, forced open or half-open (default 2);
// supervisor_gave_up takes no threshold: it fires when a model's supervisor stops restarting it.
type AlertRules struct {
	ModelUnavailable AlertRule // model_unavailable: block
	HighFailureRate  AlertRule // high_failure_rate: block
	LowSuccessRate   AlertRule // low_success_rate: block
	SlowResponses    AlertRule // slow_responses: block
	OpenBreakers     AlertRule // open_breakers: block
	SupervisorGaveUp AlertRule // supervisor_gave_up: block
}

// AlertRule is one rule's settings.
type AlertRule struct {
	Enabled       bool          // enabled: default true
	Severity      string        // severity: info | warning | critical; defaults per rule
	Threshold     float64       // threshold: see AlertRules; a duration for slow_responses
	Window        time.Duration // window: span the rate or average is taken over, default 5m, > 0
	MinCalls      int           // minCalls: calls in the window before a rate is judged, default 20, >= 1
	Hysteresis    float64       // hysteresis: how far back past the threshold the value must go to resolve, default 0.05 for rates, 0 otherwise, >= 0
	Cooldown      time.Duration // cooldown: no new firing of the same rule and model before this, default 5m, >= 0
	EscalateAfter time.Duration // escalateAfter: escalate (severity critical) when still firing after this, default 5m for model_unavailable, 0 (never) otherwise
}

// Named returns the rules with their names, in a fixed order.
func (r *AlertRules) Named() []struct {
	Name string
	Rule *AlertRule
} {
	return []struct {
		Name string
		Rule *AlertRule
	}{
		{RuleModelUnavailable, &r.ModelUnavailable},
		{RuleHighFailureRate, &r.HighFailureRate},
		{RuleLowSuccessRate, &r.LowSuccessRate},
		{RuleSlowResponses, &r.SlowResponses},
		{RuleOpenBreakers, &r.OpenBreakers},
		{RuleSupervisorGaveUp, &r.SupervisorGaveUp},
	}
}

// Webhook is one HTTP endpoint alerts are posted to. The URL comes from url
// or, when it holds a secret (a Slack incoming webhook does), from the
// environment variable urlEnv names; that URL is never logged.
type Webhook struct {
	URL         string        // url: http(s) URL, not secret; or
	URLEnv      string        // urlEnv: NAME of the environment variable holding the URL
	Format      string        // format: json (the Alert as JSON) | slack (a Slack-compatible {"text": ...} body), default json
	MinSeverity string        // minSeverity: info | warning | critical, default warning
	Timeout     time.Duration // timeout: of one delivery attempt, default 5s, > 0
	Retries     int           // retries: further attempts after a failed one, default 3, >= 0
}

// Persistence configures JetStream: the audit stream over every event and
// the key-value bucket of breaker states.
type Persistence struct {
	Enabled     bool          // enabled: use JetStream when the server has it, default true
	AuditMaxAge time.Duration // auditMaxAge: events older than this are dropped, default 720h (30 days), > 0
	AuditMaxMB  int           // auditMaxMB: size of the audit stream in MiB before the oldest events go, default 1024, >= 1
	Replicas    int           // replicas: copies of the stream and bucket in a JetStream cluster, default 1, 1..5
}

// Severities are the alert severities, least to most severe.
var severities = []string{"info", "warning", "critical"}

var webhookFormats = []string{"json", "slack"}

func defaultAlerts() Alerts {
	rate := func(sev string, threshold float64) AlertRule {
		return AlertRule{Enabled: true, Severity: sev, Threshold: threshold, Window: 5 * time.Minute, MinCalls: 20,
			Hysteresis: 0.05, Cooldown: 5 * time.Minute}
	}
	plain := func(sev string, threshold float64) AlertRule {
		return AlertRule{Enabled: true, Severity: sev, Threshold: threshold, Window: 5 * time.Minute, MinCalls: 20,
			Cooldown: 5 * time.Minute}
	}
	unavailable := plain("warning", 3)
	unavailable.EscalateAfter = 5 * time.Minute
	return Alerts{
		Enabled:  true,
		Interval: time.Second,
		Rules: AlertRules{
			ModelUnavailable: unavailable,
			HighFailureRate:  rate("warning", 0.2),
			LowSuccessRate:   rate("critical", 0.9),
			SlowResponses:    plain("warning", 5),
			OpenBreakers:     plain("critical", 2),
			SupervisorGaveUp: plain("critical", 0),
		},
	}
}

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
		"severity":      d.choice(&r.Severity, "severity", severities),
		"window":        d.duration(&r.Window, positive),
		"minCalls":      d.count(&r.MinCalls, 1),
		"hysteresis":    d.number(&r.Hysteresis, span{Lo: 0, Hi: 1e9}),
		"cooldown":      d.duration(&r.Cooldown, zeroOK),
		"escalateAfter": d.duration(&r.EscalateAfter, zeroOK),
	}
	switch name {
	case RuleModelUnavailable, RuleOpenBreakers:
		fs["threshold"] = func(v *yaml.Node, path string) {
			var n int
			d.count(&n, 1)(v, path)
			if n >= 1 {
				r.Threshold = float64(n)
			}
		}
	case RuleHighFailureRate, RuleLowSuccessRate:
		fs["threshold"] = d.number(&r.Threshold, fractionAbove0)
	case RuleSlowResponses:
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
		"minSeverity": d.choice(&w.MinSeverity, "severity", severities),
		"timeout":     d.duration(&w.Timeout, positive),
		"retries":     d.count(&w.Retries, 0),
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
			w := Webhook{Format: "json", MinSeverity: "warning", Timeout: 5 * time.Second, Retries: 3}
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
