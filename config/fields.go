package config

import (
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/messages"
)

// The tables below are the whole schema of both files: one entry per key, with
// its type and bounds. Defaults are in config.go.

const (
	positive = true  // a duration that must be above zero
	zeroOK   = false // a duration that may be zero
)

func (d *decoder) globalFields(g *Global) map[string]field {
	return map[string]field{
		"subjectPrefix":         d.token(&g.SubjectPrefix),
		"replyPrefixes":         d.list(&g.ReplyPrefixes, "subject prefixes"),
		"timeout":               d.duration(&g.Timeout, positive),
		"requestTimeout":        d.duration(&g.RequestTimeout, positive),
		"maxConcurrentPerModel": d.count(&g.MaxConcurrent, 1),
		"queueSize":             d.count(&g.QueueSize, 0),
		"strategy":              d.choice(&g.Strategy, "strategy", strategies),
		"maxParallel":           d.count(&g.MaxParallel, 1),
		"shutdownGrace":         d.duration(&g.ShutdownGrace, zeroOK),
		"circuitBreaker":        d.block(d.breakerFields(&g.CircuitBreaker)),
		"retry":                 d.block(d.retryFields(&g.Retry)),
		"healthCheck":           d.block(d.healthFields(&g.HealthCheck)),
		"streaming":             d.block(d.streamingFields(&g.Streaming)),
		"restoration":           d.block(d.restorationFields(&g.Restoration)),
		"degradation":           d.block(d.degradationFields(&g.Degradation)),
		"groupProtection":       d.block(d.groupFields(&g.GroupProtection)),
		"retryBudget":           d.block(d.budgetFields(&g.RetryBudget)),
		"hedging":               d.block(d.hedgingFields(&g.Hedging)),
		"whenAllDown":           d.block(d.allDownFields(&g.WhenAllDown)),
		"supervision":           d.block(d.supervisionFields(&g.Supervision)),
		"recovery":              d.block(d.recoveryFields(&g.Recovery)),
		"alerts":                d.block(d.alertsFields(&g.Alerts)),
		"persistence":           d.block(d.persistenceFields(&g.Persistence)),
		"chaos":                 d.block(d.chaosFields(&g.Chaos)),
		"jobs":                  d.block(d.jobsFields(&g.Jobs)),
		"events":                d.block(d.eventsFields(&g.Events)),
		"cluster":               d.block(d.clusterFields(&g.Cluster)),
	}
}

// breakerFields decodes into b.Keys in resilience.BreakerConfig.Merge's
// terms (see Breaker). Upper bounds are resilience's, checked by its
// Validate once the block is resolved.
func (d *decoder) breakerFields(b *Breaker) map[string]field {
	k := &b.Keys
	return map[string]field{
		"preset":           d.choice(&b.Preset, "preset", presets),
		"window":           named(d, &k.Window, "window", windowNames, windowKinds),
		"windowSize":       d.count(&k.WindowSize, 1),
		"windowDuration":   d.duration(&k.WindowDuration, positive),
		"windowBuckets":    d.count(&k.WindowBuckets, 1),
		"minimumCalls":     d.offCount(&k.MinimumCalls),
		"failureRate":      d.offNumber(&k.FailureRate, fraction),
		"slowRate":         d.offNumber(&k.SlowRate, fraction),
		"slowCall":         d.offDuration(&k.SlowCall),
		"failureThreshold": d.offCount(&k.ConsecutiveFailures),
		"openDuration":     d.duration(&k.OpenDuration, positive),
		"maxOpenDuration":  d.duration(&k.MaxOpenDuration, positive),
		"multiplier":       d.number(&k.Multiplier, span{Lo: 1, Hi: 1e6}), // Validate's bound, whose message speaks of 0
		"growth":           named(d, &k.Growth, "growth", growthNames, growths),
		"openJitter":       d.offNumber(&k.OpenJitter, fractionBelow1),
		"tripReset":        d.duration(&k.TripReset, positive),
		"halfOpenPermits":  d.count(&k.HalfOpenPermits, 1),
		"successThreshold": d.count(&k.SuccessThreshold, 1),
		"permitLease":      d.duration(&k.PermitLease, positive),
		"authOpen":         d.duration(&k.AuthOpen, positive),
	}
}

func (d *decoder) retryFields(r *Retry) map[string]field {
	return map[string]field{
		"maxRetries": d.count(&r.MaxRetries, 0),
		"baseDelay":  d.duration(&r.BaseDelay, positive),
		"multiplier": d.number(&r.Multiplier, atLeast1),
		"maxDelay":   d.duration(&r.MaxDelay, positive),
		"jitter":     d.number(&r.Jitter, fractionBelow1),
	}
}

func (d *decoder) healthFields(h *HealthCheck) map[string]field {
	return map[string]field{
		"enabled":          d.flag(&h.Enabled),
		"interval":         d.duration(&h.Interval, positive),
		"timeout":          d.duration(&h.Timeout, positive),
		"retries":          d.count(&h.Retries, 0),
		"degradedRatio":    d.number(&h.DegradedRatio, fractionAbove0),
		"successFloor":     d.number(&h.SuccessFloor, fraction),
		"minCalls":         d.count(&h.MinCalls, 1),
		"unavailableAfter": d.count(&h.UnavailableAfter, 0),
		"window":           d.duration(&h.Window, positive),
		"openInterval":     d.duration(&h.OpenInterval, zeroOK),
		"rampInterval":     d.duration(&h.RampInterval, zeroOK),
	}
}

func (d *decoder) streamingFields(s *Streaming) map[string]field {
	return map[string]field{
		"firstTokenTimeout": d.duration(&s.FirstTokenTimeout, positive),
		"idleTimeout":       d.duration(&s.IdleTimeout, positive),
		"totalTimeout":      d.duration(&s.TotalTimeout, positive),
		"maxContinuations":  d.count(&s.MaxContinuations, 0),
		"onMalformed":       d.choice(&s.OnMalformed, "onMalformed", []string{MalformedSkip, MalformedFail}),
	}
}

func (d *decoder) degradationFields(g *Degradation) map[string]field {
	return map[string]field{
		"responseTime": func(v *yaml.Node, path string) {
			var t [4]time.Duration
			if d.levels(v, path, func(i int) field { return d.duration(&t[i], positive) },
				func() bool { return t[0] < t[1] && t[1] < t[2] && t[2] < t[3] }, "strictly increasing") {
				g.ResponseTime = t
			}
		},
		"successRate": func(v *yaml.Node, path string) {
			var r [4]float64
			if d.levels(v, path, func(i int) field { return d.number(&r[i], fractionAbove0) },
				func() bool { return r[0] > r[1] && r[1] > r[2] && r[2] > r[3] }, "strictly decreasing") {
				g.SuccessRate = r
			}
		},
		"criticalOnly":     d.flag(&g.CriticalOnly),
		"criticalOnlyFrom": named(d, &g.CriticalOnlyFrom, "level", levelNames, levels),
		"lowerAfter":       d.duration(&g.LowerAfter, zeroOK),
	}
}

// The degradation levels criticalOnlyFrom accepts (all but none).
var (
	levelNames = []string{"minimal", "moderate", "severe", "critical"}
	levels     = []messages.Degradation{messages.Degradation_minimal, messages.Degradation_moderate,
		messages.Degradation_severe, messages.Degradation_critical}
)

func (d *decoder) restorationFields(r *Restoration) map[string]field {
	return map[string]field{
		"steps":        d.percents(&r.Steps),
		"over":         d.duration(&r.Over, positive),
		"successFloor": d.number(&r.SuccessFloor, fractionAbove0),
		"minCalls":     d.count(&r.MinCalls, 1),
		"maxHold":      d.duration(&r.MaxHold, zeroOK),
		"successes":    d.count(&r.Successes, 0),
	}
}

// minPanicRate is resilience.GroupConfig's slowest trickle, one request an hour.
const minPanicRate = 1.0 / 3600

func (d *decoder) groupFields(p *GroupProtection) map[string]field {
	return map[string]field{
		"maxOpenShare": d.number(&p.MaxOpenShare, fractionAbove0),
		"panicRate": func(v *yaml.Node, path string) {
			x := -1.0 // stays -1 when the value is refused
			d.number(&x, atLeast0)(v, path)
			switch {
			case x > 0 && x < minPanicRate:
				d.errorf(v, path, "%q is too small (must be 0 for none, or at least 1/3600: one request an hour)", raw(v))
			case x >= 0:
				p.PanicRate = x
			}
		},
	}
}

func (d *decoder) budgetFields(b *RetryBudget) map[string]field {
	return map[string]field{
		"ratio":   d.number(&b.Ratio, fractionAbove0),
		"minimum": d.count(&b.Minimum, 0),
	}
}

func (d *decoder) allDownFields(a *WhenAllDown) map[string]field {
	return map[string]field{
		"wait":  d.duration(&a.Wait, zeroOK),
		"reply": d.text(&a.Reply),
	}
}

func (d *decoder) supervisionFields(s *Supervision) map[string]field {
	return map[string]field{
		"maxRestarts": d.count(&s.MaxRestarts, 1),
		"within":      d.duration(&s.Within, positive),
		"baseDelay":   d.duration(&s.BaseDelay, positive),
		"maxDelay":    d.duration(&s.MaxDelay, positive),
		"jitter":      d.number(&s.Jitter, fractionBelow1),
	}
}

func (d *decoder) recoveryFields(r *Recovery) map[string]field {
	return map[string]field{
		"enabled":       d.flag(&r.Enabled),
		"maxConcurrent": d.count(&r.MaxConcurrent, 1),
		"errorRate":     d.number(&r.ErrorRate, fractionAbove0),
		"minCalls":      d.count(&r.MinCalls, 1),
		"responseTime":  d.duration(&r.ResponseTime, positive),
		"failures":      d.count(&r.Failures, 1),
		"timeout":       d.duration(&r.Timeout, positive),
		"cooldown":      d.duration(&r.Cooldown, zeroOK),
	}
}

func (d *decoder) hedgingFields(h *Hedging) map[string]field {
	return map[string]field{
		"delay": d.duration(&h.Delay, zeroOK),
	}
}

// flatKeys holds the proposal's flat aliases of a model while it is decoded,
// each in the terms of its nested key.
type flatKeys struct {
	maxRetries int
	threshold  int // circuitBreaker.failureThreshold, so -1 when given as 0 (off)
}

func (d *decoder) modelFields(m *Model, flat *flatKeys) map[string]field {
	return map[string]field{
		"provider":                d.choice(&m.Provider, "provider", providers),
		"endpoint":                d.url(&m.Endpoint),
		"apiKeyEnv":               d.envVar(&m.APIKeyEnv),
		"upstreamModel":           d.text(&m.UpstreamModel),
		"command":                 d.list(&m.Command, "strings"),
		"timeout":                 d.duration(&m.Timeout, positive),
		"maxConcurrent":           d.count(&m.MaxConcurrent, 1),
		"queueSize":               d.count(&m.QueueSize, 0),
		"fallbacks":               d.list(&m.Fallbacks, "model names"),
		"strategy":                d.choice(&m.Strategy, "strategy", strategies),
		"weight":                  d.number(&m.Weight, above0),
		"supportsPrefill":         d.flag(&m.SupportsPrefill),
		"contextWindow":           d.count(&m.ContextWindow, 0),
		"maxOutputTokens":         d.count(&m.MaxOutputTokens, 0),
		"contextWindowFallbacks":  d.list(&m.ContextWindowFallbacks, "model names"),
		"contentPolicyFallbacks":  d.list(&m.ContentPolicyFallbacks, "model names"),
		"maxRetries":              d.count(&flat.maxRetries, 0),
		"circuitBreakerThreshold": d.offCount(&flat.threshold),
		"circuitBreaker":          d.block(d.breakerFields(&m.CircuitBreaker)),
		"retry":                   d.block(d.retryFields(&m.Retry)),
		"healthCheck":             d.block(d.healthFields(&m.HealthCheck)),
		"streaming":               d.block(d.streamingFields(&m.Streaming)),
		"restoration":             d.block(d.restorationFields(&m.Restoration)),
		"sim":                     d.block(d.simFields(&m.Sim)),
	}
}

func (d *decoder) simFields(s *Sim) map[string]field {
	return map[string]field{
		"latency":       d.duration(&s.Latency, zeroOK),
		"jitter":        d.duration(&s.Jitter, zeroOK),
		"failureRate":   d.number(&s.FailureRate, fraction),
		"errorClass":    d.errorClass(&s.ErrorClass),
		"seed":          d.seed(&s.Seed),
		"reply":         d.text(&s.Reply),
		"tokenDelay":    d.duration(&s.TokenDelay, zeroOK),
		"rejectPrefill": d.flag(&s.RejectPrefill),
	}
}

// modelsFile decodes the models file into c, whose Global is already loaded,
// and validates every model and every fallback.
func (d *decoder) modelsFile(root *yaml.Node, c *Config) {
	var models *yaml.Node
	line := 1
	d.fields(root, "", map[string]field{"models": func(v *yaml.Node, _ string) {
		models = yamlnode.Resolve(v)
		line = models.Line
	}})
	if root = yamlnode.Resolve(root); root != nil && root.Kind != yaml.MappingNode {
		return // reported by fields
	}
	if models != nil && !yamlnode.IsNull(models) && models.Kind != yaml.MappingNode {
		d.errorf(models, "models", "must be a mapping of model names to their settings, not %s", yamlnode.KindName(models))
		return
	}
	d.each(models, "models", func(k, v *yaml.Node, _ string) {
		name := k.Value
		path := modelPath(name)
		if !subjectToken.MatchString(name) {
			d.errorf(k, path, "model name %q is not allowed (use letters, digits, \"-\" and \"_\": it becomes a NATS subject token)", name)
		}
		m := newModel(name, d.file, k.Line, &c.Global)
		var flat flatKeys
		d.fields(v, path, d.modelFields(m, &flat))
		d.finishModel(m, path, flat, &c.Global)
		c.Models[name] = m
		c.Order = append(c.Order, name)
	})
	if len(c.Order) == 0 {
		if root != nil && models == nil {
			line = root.Line
		}
		d.add(line, "models", "no models defined (give at least one under \"models:\")")
		return
	}
	for _, name := range c.Order {
		m := c.Models[name]
		d.checkFallbacks(c, m, "fallbacks", m.Fallbacks)
		d.checkFallbacks(c, m, "contextWindowFallbacks", m.ContextWindowFallbacks)
		d.checkFallbacks(c, m, "contentPolicyFallbacks", m.ContentPolicyFallbacks)
	}
}

// modelPath is the key path of a model, its name quoted when it is not a
// valid name (it may be empty or hold dots).
func modelPath(name string) string {
	if !subjectToken.MatchString(name) {
		return "models." + strconv.Quote(name)
	}
	return "models." + name
}
