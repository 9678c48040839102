package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cmmv-hive/resilience/internal/yamlnode"
	"github.com/cmmv-hive/resilience/resilience"
)

// The checks here need more than one key, or every model: each single value
// was already checked against its bounds while it was decoded.

// checkGlobal checks the global blocks' keys that bound one another, and
// the policy each block configures as the resilience package validates it.
func (d *decoder) checkGlobal(g *Global) {
	d.checkReplyPrefixes(g)
	d.checkBreaker("circuitBreaker", "", &g.CircuitBreaker, nil)
	d.checkRetry("retry", &g.Retry)
	d.checkPolicy("retry", g.Retry.config().Validate(), nil, retryKeys)
	d.checkPolicy("healthCheck", g.HealthCheck.config(g.Timeout).Validate(), nil, healthKeys)
	d.checkPolicy("restoration", g.Restoration.config().Validate(), nil, rampKeys)
	d.checkPolicy("degradation", g.DegradationConfig().Validate(), nil, degradationKeys)
	d.checkPolicy("groupProtection", g.GroupConfig().Validate(), nil, groupKeys)
	_, err := resilience.NewBudget(g.BudgetConfig())
	d.checkPolicy("retryBudget", err, nil, nil)
}

func (d *decoder) checkRetry(path string, r *Retry) {
	d.ordered(path, "baseDelay", "maxDelay", r.BaseDelay <= r.MaxDelay)
}

// checkModelPolicies checks the policies of model m at path that take keys
// from the global blocks g: a problem the global block has too was reported
// with it.
func (d *decoder) checkModelPolicies(m *Model, path string, g *Global) {
	d.checkBreaker(path+".circuitBreaker", path+".circuitBreakerThreshold", &m.CircuitBreaker, &g.CircuitBreaker)
	d.checkRetry(path+".retry", &m.Retry)
	d.checkPolicy(path+".retry", m.RetryConfig().Validate(), g.Retry.config().Validate(), retryKeys)
	d.checkPolicy(path+".healthCheck", m.HealthConfig().Validate(), g.HealthCheck.config(g.Timeout).Validate(), healthKeys)
	d.checkPolicy(path+".restoration", m.RampConfig().Validate(), g.Restoration.config().Validate(), rampKeys)
}

// ordered reports that key lo of the block at path exceeds its key hi, when
// inOrder is false. It blames the key the block gives, hi first; when the
// block gives neither, both were inherited and checked where they were given.
func (d *decoder) ordered(path, lo, hi string, inOrder bool) {
	loPath, hiPath := yamlnode.Join(path, lo), yamlnode.Join(path, hi)
	if inOrder || d.failed(loPath) || d.failed(hiPath) {
		return
	}
	if line, given := d.seen[hiPath]; given {
		d.add(line, hiPath, "must be at least %s", lo)
	} else if line, given := d.seen[loPath]; given {
		d.add(line, loPath, "must be at most %s", hi)
	}
}

// finishModel applies the defaults that depend on other keys (provider,
// endpoint, upstream model, the flat aliases), checks the model's policies
// and the keys that depend on the provider.
func (d *decoder) finishModel(m *Model, path string, flat flatKeys, g *Global) {
	d.alias(path, "maxRetries", "retry.maxRetries", flat.maxRetries, &m.Retry.MaxRetries)
	d.alias(path, "circuitBreakerThreshold", "circuitBreaker.failureThreshold", flat.threshold, &m.CircuitBreaker.Keys.ConsecutiveFailures)
	d.checkModelPolicies(m, path, g)
	if m.UpstreamModel == "" {
		m.UpstreamModel = m.Name
	}

	_, providerGiven := d.seen[path+".provider"]
	if m.Provider == "" {
		if providerGiven {
			return // an unknown provider, reported: its other checks would only add noise
		}
		m.Provider, m.ProviderDefaulted = ProviderSim, true
	}
	switch m.Provider {
	case ProviderOpenAI:
		if m.Endpoint == "" {
			m.Endpoint = DefaultOpenAIEndpoint
		}
	case ProviderAnthropic:
		if m.Endpoint == "" {
			m.Endpoint = DefaultAnthropicEndpoint
		}
	case ProviderExec:
		d.checkCommand(m, path)
	}
	d.applyLimits(m, path)
	if m.ContextWindow > 0 && m.MaxOutputTokens > 0 {
		d.ordered(path, "maxOutputTokens", "contextWindow", m.MaxOutputTokens <= m.ContextWindow)
	}
	if m.Provider != ProviderOpenAI && m.Provider != ProviderAnthropic {
		for _, key := range []string{"endpoint", "apiKeyEnv", "upstreamModel"} {
			d.onlyFor(m, path, key, "providers openai and anthropic")
		}
	}
	if m.Provider != ProviderExec {
		d.onlyFor(m, path, "command", "provider exec")
	} else {
		d.onlyFor(m, path, "supportsPrefill", "providers openai, anthropic and sim")
	}
	if _, given := d.seen[yamlnode.Join(path, "supportsPrefill")]; !given {
		m.SupportsPrefill = m.Provider == ProviderAnthropic // every Anthropic model but a few takes one; the rest say so (a 400)
	}
	if m.Provider != ProviderSim {
		d.onlyFor(m, path, "sim", "provider sim")
		m.Sim = Sim{}
		return
	}
	d.ordered(path+".sim", "jitter", "latency", m.Sim.Jitter <= m.Sim.Latency)
}

// alias merges a flat key of the proposal (maxRetries) into its nested key
// (retry.maxRetries); v is the flat value, decoded as the nested key is.
// Giving both with different values is an error.
func (d *decoder) alias(path, flatKey, nestedKey string, v int, dst *int) {
	flatPath, nestedPath := yamlnode.Join(path, flatKey), yamlnode.Join(path, nestedKey)
	if _, given := d.seen[flatPath]; !given || d.failed(flatPath) {
		return
	}
	if _, given := d.seen[nestedPath]; given {
		if !d.failed(nestedPath) && *dst != v {
			d.add(d.seen[flatPath], flatPath, "conflicts with %s (give one of them, or the same value)", nestedPath)
		}
		return
	}
	*dst = v
}

// onlyFor reports key as given to a model whose provider does not use it.
func (d *decoder) onlyFor(m *Model, path, key, users string) {
	keyPath := yamlnode.Join(path, key)
	line, given := d.seen[keyPath]
	if !given {
		return
	}
	provider := m.Provider
	if m.ProviderDefaulted {
		provider += ", the default when provider is omitted"
	}
	d.add(line, keyPath, "only used by %s (this model's provider is %s)", users, provider)
}

// checkCommand checks the argv of an exec model.
func (d *decoder) checkCommand(m *Model, path string) {
	keyPath := path + ".command"
	line, given := d.seen[keyPath]
	switch {
	case given && d.failed(keyPath):
	case len(m.Command) == 0:
		if !given {
			line = m.Line
		}
		d.add(line, keyPath, `required for provider exec: the program and its arguments, such as ["aider", "--message", "{prompt}"]`)
	case strings.TrimSpace(m.Command[0]) == "":
		d.add(d.items[itemPath(keyPath, 0)].Line, keyPath, "the program (first item) is empty")
	}
}

// maxKnown is how many model names a message about an unknown one lists.
const maxKnown = 10

// checkFallbacks checks that list, m's key, names other models, once each.
func (d *decoder) checkFallbacks(c *Config, m *Model, key string, list []string) {
	path := modelPath(m.Name) + "." + key
	first := map[string]int{}
	for i, name := range list {
		item := d.items[itemPath(path, i)]
		switch {
		case name == m.Name:
			d.errorf(item, path, "%q is the model itself (list other models)", raw(item))
		case c.Models[name] == nil:
			d.errorf(item, path, "unknown model %q (known: %s)", raw(item), known(c, m.Name))
		case first[name] > 0:
			d.errorf(item, path, "%q is listed twice (first at line %d)", raw(item), first[name])
		}
		if first[name] == 0 {
			first[name] = item.Line
		}
	}
}

// known lists the model names of c but except, sorted, at most maxKnown.
func known(c *Config, except string) string {
	names := slices.DeleteFunc(slices.Sorted(maps.Keys(c.Models)), func(n string) bool { return n == except })
	if len(names) > maxKnown {
		return fmt.Sprintf("%s, ... %d more", strings.Join(names[:maxKnown], ", "), len(names)-maxKnown)
	}
	return strings.Join(names, ", ")
}

// checkReplyPrefixes checks that replyPrefixes is not empty and that no
// prefix could cover a subject a node acts on: a reply subject under it is
// published with the node's own permissions, so a prefix must hold only
// inboxes. Refused: wildcards and spaces, system and JetStream subjects
// ("$..."), and any prefix of, or under, "<subjectPrefix>.".
func (d *decoder) checkReplyPrefixes(g *Global) {
	const path = "replyPrefixes"
	if d.failed(path) {
		return
	}
	if len(g.ReplyPrefixes) == 0 {
		d.add(d.seen[path], path, "must list at least one inbox prefix (the default is [\"_INBOX.\", \"_INBOX_\"])")
		return
	}
	hive := g.SubjectPrefix + "."
	for i, p := range g.ReplyPrefixes {
		item := d.items[itemPath(path, i)]
		if item == nil { // the default list, refused for the prefix given
			if strings.HasPrefix(hive, p) || strings.HasPrefix(p, hive) {
				d.add(d.seen["subjectPrefix"], "subjectPrefix", "%q clashes with the default replyPrefixes %q: choose another prefix, or set replyPrefixes", g.SubjectPrefix, p)
			}
			continue
		}
		switch {
		case p == "" || strings.ContainsAny(p, " \t\r\n*>"):
			d.errorf(item, path, "%q is not a subject prefix (no spaces, no wildcards; an inbox prefix such as \"_INBOX_app.\")", raw(item))
		case strings.HasPrefix(p, "$"):
			d.errorf(item, path, "%q would let replies reach system or JetStream subjects", raw(item))
		case strings.HasPrefix(hive, p) || strings.HasPrefix(p, hive):
			d.errorf(item, path, "%q would let replies reach Hive's own subjects (%sv1.*): list inbox prefixes only", raw(item), hive)
		}
	}
}
