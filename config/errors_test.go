package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// okModels is a valid models file, for the cases about resilience.yml.
var okModels = lines("models:", "  a: {}")

// badFile is a file that must be refused with exactly the message want.
type badFile struct {
	name   string
	global string // resilience.yml; "" for none
	models string // models-resilience.yml
	want   string // the whole error, one line per problem
}

// model wraps the keys of one model called gpt-5 (they start at line 3).
func model(keys ...string) string {
	return lines(append([]string{"models:", "  gpt-5:"}, keys...)...)
}

var syntaxCases = []badFile{
	{name: "invalid YAML", models: lines("models:", "  a: [1,"),
		want: "models-resilience.yml:2: invalid YAML: did not find expected node content"},
	{name: "invalid YAML on line 1", models: "models: a: b\n",
		want: "models-resilience.yml:1: invalid YAML: mapping values are not allowed in this context"},
	{name: "tab indentation", models: lines("models:", "\ta: {}"),
		want: "models-resilience.yml:2: invalid YAML: found character that cannot start any token"},
	{name: "control character", models: lines("models:", "  a: {}", "  b: {reply: \"x\x01\"}"),
		want: "models-resilience.yml:3: invalid YAML: control characters are not allowed"},
	{name: "invalid YAML in global file", global: "timeout: [\n", models: okModels,
		want: "resilience.yml:1: invalid YAML: did not find expected node content"},
	{name: "two documents", models: lines("models:", "  a: {}", "---", "models:", "  b: {}"),
		want: `models-resilience.yml:3: a second YAML document ("---") is not allowed: use one document per file`},
	{name: "top level is a list", models: lines("- a"),
		want: "models-resilience.yml:1: must be a mapping of keys, not a list"},
	{name: "global top level is a value", global: "hive\n", models: okModels,
		want: "resilience.yml:1: must be a mapping of keys, not a single value"},
	{name: "empty models file", models: "",
		want: `models-resilience.yml:1: models: no models defined (give at least one under "models:")`},
	{name: "no models", models: lines("# none yet", "models: {}"),
		want: `models-resilience.yml:2: models: no models defined (give at least one under "models:")`},
	{name: "models without value", models: lines("# none yet", "models:"),
		want: `models-resilience.yml:2: models: no models defined (give at least one under "models:")`},
	{name: "models is a list", models: lines("models:", "  - gpt-5"),
		want: "models-resilience.yml:2: models: must be a mapping of model names to their settings, not a list"},
}

var keyCases = []badFile{
	{name: "unknown top-level key", models: lines("model:", "  a: {}"),
		want: lines(
			`models-resilience.yml:1: model: unknown key (did you mean "models"?)`,
			`models-resilience.yml:1: models: no models defined (give at least one under "models:")`)},
	{name: "unknown model key, typo", models: model("    timout: 3s"),
		want: `models-resilience.yml:3: models.gpt-5.timout: unknown key (did you mean "timeout"?)`},
	{name: "unknown model key", models: model("    colour: red"),
		want: "models-resilience.yml:3: models.gpt-5.colour: unknown key (known: apiKeyEnv, circuitBreaker, " +
			"circuitBreakerThreshold, command, contentPolicyFallbacks, contextWindow, contextWindowFallbacks, endpoint, fallbacks, " +
			"healthCheck, maxConcurrent, maxOutputTokens, maxRetries, " +
			"provider, queueSize, restoration, retry, sim, strategy, streaming, supportsPrefill, timeout, upstreamModel, weight)"},
	{name: "unknown global key, shortened", global: "maxConcurrent: 5\n", models: okModels,
		want: `resilience.yml:1: maxConcurrent: unknown key (did you mean "maxConcurrentPerModel"?)`},
	{name: "unknown key in a block", global: lines("circuitBreaker:", "  failureTreshold: 3"), models: okModels,
		want: `resilience.yml:2: circuitBreaker.failureTreshold: unknown key (did you mean "failureThreshold"?)`},
	{name: "global key in a model", models: model("    maxConcurrentPerModel: 3"),
		want: `models-resilience.yml:3: models.gpt-5.maxConcurrentPerModel: unknown key (did you mean "maxConcurrent"?)`},
	{name: "duplicate model", models: lines("models:", "  a: {}", "  a: {}"),
		want: "models-resilience.yml:3: models.a: duplicate key (first at line 2)"},
	{name: "duplicate model key", models: model("    timeout: 1s", "    timeout: 2s"),
		want: "models-resilience.yml:4: models.gpt-5.timeout: duplicate key (first at line 3)"},
	{name: "duplicate global key", global: lines("timeout: 1s", "retry: {}", "timeout: 2s"), models: okModels,
		want: "resilience.yml:3: timeout: duplicate key (first at line 1)"},
	{name: "merge of a value", models: model("    <<: 5"),
		want: "models-resilience.yml:3: models.gpt-5.<<: must be a mapping or a list of mappings to merge (such as <<: *defaults), not a single value"},
	{name: "merge of a list of values", models: lines("models:", "  a: &a {timeout: 1s}", "  b:", "    <<: [*a, x]"),
		want: "models-resilience.yml:4: models.b.<<: must be a mapping or a list of mappings to merge (such as <<: *defaults), not a single value"},
	{name: "key that is a list", models: lines("models:", "  ? [a, b]", "  : {}"),
		want: lines(
			"models-resilience.yml:2: models: a key must be a plain name, not a list",
			`models-resilience.yml:2: models: no models defined (give at least one under "models:")`)},
}

var typeCases = []badFile{
	{name: "webhook with url and urlEnv", models: okModels,
		global: lines("alerts:", "  webhooks:", "    - url: http://a.example/x", "      urlEnv: HOOK"),
		want:   "resilience.yml:3: alerts.webhooks[0]: give exactly one of url and urlEnv (urlEnv when the URL holds a secret)"},
	{name: "webhook with neither", models: okModels, global: lines("alerts:", "  webhooks:", "    - format: slack"),
		want: "resilience.yml:3: alerts.webhooks[0]: give exactly one of url and urlEnv (urlEnv when the URL holds a secret)"},
	{name: "webhooks not a list", models: okModels, global: lines("alerts:", "  webhooks: http://a.example/x"),
		want: "resilience.yml:2: alerts.webhooks: must be a list of webhooks (each a mapping with url or urlEnv), not a single value"},
	{name: "unknown alert rule", models: okModels, global: lines("alerts:", "  rules:", "    model_down: {}"),
		want: `resilience.yml:3: alerts.rules.model_down: unknown key (known: high_failure_rate, low_success_rate, model_unavailable, open_breakers, slow_responses, supervisor_gave_up)`},
	{name: "bad severity", models: okModels, global: lines("alerts:", "  rules:", "    open_breakers: {severity: page}"),
		want: `resilience.yml:3: alerts.rules.open_breakers.severity: unknown severity "page" (allowed: info, warning, critical)`},
	{name: "slow_responses threshold is a duration", models: okModels,
		global: lines("alerts:", "  rules:", "    slow_responses: {threshold: fast}"),
		want:   `resilience.yml:3: alerts.rules.slow_responses.threshold: "fast" is not a duration (use "30s" or milliseconds)`},
	{name: "failure rate threshold above 1", models: okModels,
		global: lines("alerts:", "  rules:", "    high_failure_rate: {threshold: 20}"),
		want:   `resilience.yml:3: alerts.rules.high_failure_rate.threshold: "20" is out of range (must be in (0, 1])`},
	{name: "persistence replicas", models: okModels, global: lines("persistence:", "  replicas: 7"),
		want: `resilience.yml:2: persistence.replicas: "7" is too large (must be at most 5)`},
	{name: "not a duration", models: lines("models:", "  claude-4-sonnet: {}", "  deepseek-v3: {}", "  gemini-2-5-pro: {}",
		"  grok-3: {}", "  gpt-5:", "    timeout: 3x"),
		want: `models-resilience.yml:7: models.gpt-5.timeout: "3x" is not a duration (use "30s" or milliseconds)`},
	{name: "number with a unit Go lacks", models: model("    timeout: 3sec"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "3sec" is not a duration (use "30s" or milliseconds)`},
	{name: "fractional milliseconds", models: model("    timeout: 1.5"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "1.5" is not a duration (use "30s" or milliseconds)`},
	{name: "too many milliseconds", models: model("    timeout: 10000000000000"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "10000000000000" is not a duration (use "30s" or milliseconds)`},
	{name: "negative duration", models: model("    timeout: -5s"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "-5s" is negative (use "30s" or milliseconds)`},
	{name: "negative milliseconds", models: model("    sim: {latency: -100}"),
		want: `models-resilience.yml:3: models.gpt-5.sim.latency: "-100" is negative (use "30s" or milliseconds)`},
	{name: "zero timeout", models: model("    timeout: 0"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "0" is zero (use a duration above zero such as "30s")`},
	{name: "zero interval", global: lines("healthCheck:", "  interval: 0s"), models: okModels,
		want: `resilience.yml:2: healthCheck.interval: "0s" is zero (use a duration above zero such as "30s")`},
	{name: "zero open duration", global: "circuitBreaker: {openDuration: 0ms}\n", models: okModels,
		want: `resilience.yml:1: circuitBreaker.openDuration: "0ms" is zero (use a duration above zero such as "30s")`},
	{name: "zero base delay", models: model("    retry: {baseDelay: 0}"),
		want: `models-resilience.yml:3: models.gpt-5.retry.baseDelay: "0" is zero (use a duration above zero such as "30s")`},
	{name: "zero stream timeout", models: model("    streaming:", "      firstTokenTimeout: 0"),
		want: `models-resilience.yml:4: models.gpt-5.streaming.firstTokenTimeout: "0" is zero (use a duration above zero such as "30s")`},
	{name: "duration given a list", models: model("    timeout: [1s]"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: must be a duration such as "30s" or milliseconds, not a list`},
	{name: "key without value", models: model("    timeout:"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: has no value (want a duration such as "30s" or milliseconds)`},
	{name: "not a whole number", models: model("    maxConcurrent: ten"),
		want: `models-resilience.yml:3: models.gpt-5.maxConcurrent: "ten" is not a whole number`},
	{name: "float count", models: model("    maxRetries: 2.5"),
		want: `models-resilience.yml:3: models.gpt-5.maxRetries: "2.5" is not a whole number`},
	{name: "zero maxConcurrent", models: model("    maxConcurrent: 0"),
		want: `models-resilience.yml:3: models.gpt-5.maxConcurrent: "0" is too small (must be at least 1)`},
	{name: "zero maxConcurrentPerModel", global: "maxConcurrentPerModel: 0\n", models: okModels,
		want: `resilience.yml:1: maxConcurrentPerModel: "0" is too small (must be at least 1)`},
	{name: "zero maxParallel", global: "maxParallel: 0\n", models: okModels,
		want: `resilience.yml:1: maxParallel: "0" is too small (must be at least 1)`},
	{name: "negative failureThreshold", models: model("    circuitBreaker: {failureThreshold: -1}"),
		want: `models-resilience.yml:3: models.gpt-5.circuitBreaker.failureThreshold: "-1" is too small (must be at least 0)`},
	{name: "negative circuitBreakerThreshold", models: model("    circuitBreakerThreshold: -2"),
		want: `models-resilience.yml:3: models.gpt-5.circuitBreakerThreshold: "-2" is too small (must be at least 0)`},
	{name: "failureRate above 1", global: "circuitBreaker: {failureRate: 1.2}\n", models: okModels,
		want: `resilience.yml:1: circuitBreaker.failureRate: "1.2" is out of range (must be in [0, 1])`},
	{name: "openJitter of 1", models: model("    circuitBreaker: {openJitter: 1}"),
		want: `models-resilience.yml:3: models.gpt-5.circuitBreaker.openJitter: "1" is out of range (must be in [0, 1))`},
	{name: "negative slowCall", models: model("    circuitBreaker: {slowCall: -1s}"),
		want: `models-resilience.yml:3: models.gpt-5.circuitBreaker.slowCall: "-1s" is negative (use "30s" or milliseconds)`},
	{name: "zero windowSize", global: "circuitBreaker: {windowSize: 0}\n", models: okModels,
		want: `resilience.yml:1: circuitBreaker.windowSize: "0" is too small (must be at least 1)`},
	{name: "multiplier below 1 in a breaker", global: "circuitBreaker: {multiplier: 0}\n", models: okModels,
		want: `resilience.yml:1: circuitBreaker.multiplier: "0" is out of range (must be in [1, 1000000])`},
	{name: "breaker multiplier too large", models: model("    circuitBreaker: {multiplier: 2e6}"),
		want: `models-resilience.yml:3: models.gpt-5.circuitBreaker.multiplier: "2e6" is out of range (must be in [1, 1000000])`},
	{name: "zero tripReset", models: model("    circuitBreaker:", "      tripReset: 0s"),
		want: `models-resilience.yml:4: models.gpt-5.circuitBreaker.tripReset: "0s" is zero (use a duration above zero such as "30s")`},
	{name: "healthCheck successFloor above 1", global: "healthCheck: {successFloor: 1.5}\n", models: okModels,
		want: `resilience.yml:1: healthCheck.successFloor: "1.5" is out of range (must be in [0, 1])`},
	{name: "zero healthCheck minCalls", models: model("    healthCheck: {minCalls: 0}"),
		want: `models-resilience.yml:3: models.gpt-5.healthCheck.minCalls: "0" is too small (must be at least 1)`},
	{name: "negative unavailableAfter", global: "healthCheck: {unavailableAfter: -1}\n", models: okModels,
		want: `resilience.yml:1: healthCheck.unavailableAfter: "-1" is too small (must be at least 0)`},
	{name: "zero health window", global: "healthCheck: {window: 0}\n", models: okModels,
		want: `resilience.yml:1: healthCheck.window: "0" is zero (use a duration above zero such as "30s")`},
	{name: "zero restoration over", models: model("    restoration: {over: 0}"),
		want: `models-resilience.yml:3: models.gpt-5.restoration.over: "0" is zero (use a duration above zero such as "30s")`},
	{name: "zero restoration successFloor", global: "restoration: {successFloor: 0}\n", models: okModels,
		want: `resilience.yml:1: restoration.successFloor: "0" is out of range (must be in (0, 1])`},
	{name: "negative maxHold", global: "restoration: {maxHold: -1s}\n", models: okModels,
		want: `resilience.yml:1: restoration.maxHold: "-1s" is negative (use "30s" or milliseconds)`},
	{name: "negative lowerAfter", global: "degradation: {lowerAfter: -1s}\n", models: okModels,
		want: `resilience.yml:1: degradation.lowerAfter: "-1s" is negative (use "30s" or milliseconds)`},
	{name: "zero maxOpenShare", global: "groupProtection: {maxOpenShare: 0}\n", models: okModels,
		want: `resilience.yml:1: groupProtection.maxOpenShare: "0" is out of range (must be in (0, 1])`},
	{name: "negative panicRate", global: "groupProtection: {panicRate: -1}\n", models: okModels,
		want: `resilience.yml:1: groupProtection.panicRate: "-1" is out of range (must be at least 0)`},
	{name: "zero retryBudget ratio", global: "retryBudget: {ratio: 0}\n", models: okModels,
		want: `resilience.yml:1: retryBudget.ratio: "0" is out of range (must be in (0, 1])`},
	{name: "negative retryBudget minimum", global: lines("retryBudget:", "  minimum: -1"), models: okModels,
		want: `resilience.yml:2: retryBudget.minimum: "-1" is too small (must be at least 0)`},
	{name: "negative hedging delay", global: "hedging: {delay: -5ms}\n", models: okModels,
		want: `resilience.yml:1: hedging.delay: "-5ms" is negative (use "30s" or milliseconds)`},
	{name: "hedging given a value", global: "hedging: 50ms\n", models: okModels,
		want: "resilience.yml:1: hedging: must be a mapping of keys, not a single value"},
	{name: "zero successThreshold", global: "circuitBreaker: {successThreshold: 0}\n", models: okModels,
		want: `resilience.yml:1: circuitBreaker.successThreshold: "0" is too small (must be at least 1)`},
	{name: "zero halfOpenPermits", global: "circuitBreaker: {halfOpenPermits: 0}\n", models: okModels,
		want: `resilience.yml:1: circuitBreaker.halfOpenPermits: "0" is too small (must be at least 1)`},
	{name: "negative queueSize", models: model("    queueSize: -1"),
		want: `models-resilience.yml:3: models.gpt-5.queueSize: "-1" is too small (must be at least 0)`},
	{name: "negative maxRetries", global: "retry: {maxRetries: -1}\n", models: okModels,
		want: `resilience.yml:1: retry.maxRetries: "-1" is too small (must be at least 0)`},
	{name: "failureRate above 1", models: model("    sim: {failureRate: 1.5}"),
		want: `models-resilience.yml:3: models.gpt-5.sim.failureRate: "1.5" is out of range (must be in [0, 1])`},
	{name: "retry jitter of 1", global: "retry: {jitter: 1}\n", models: okModels,
		want: `resilience.yml:1: retry.jitter: "1" is out of range (must be in [0, 1))`},
	{name: "zero degradedRatio", global: "healthCheck: {degradedRatio: 0}\n", models: okModels,
		want: `resilience.yml:1: healthCheck.degradedRatio: "0" is out of range (must be in (0, 1])`},
	{name: "multiplier below 1", global: "retry: {multiplier: 0.5}\n", models: okModels,
		want: `resilience.yml:1: retry.multiplier: "0.5" is out of range (must be at least 1)`},
	{name: "zero weight", models: model("    weight: 0"),
		want: `models-resilience.yml:3: models.gpt-5.weight: "0" is out of range (must be above 0)`},
	{name: "not a number", models: model("    weight: heavy"),
		want: `models-resilience.yml:3: models.gpt-5.weight: "heavy" is not a number`},
	{name: "not a boolean", global: "healthCheck: {enabled: yes}\n", models: okModels,
		want: `resilience.yml:1: healthCheck.enabled: "yes" is not true or false`},
	{name: "block given a value", models: model("    circuitBreaker: 5"),
		want: "models-resilience.yml:3: models.gpt-5.circuitBreaker: must be a mapping of keys, not a single value"},
	{name: "list given a value", models: model("    fallbacks: claude"),
		want: "models-resilience.yml:3: models.gpt-5.fallbacks: must be a list of model names, not a single value"},
	{name: "list item that is a list", models: model("    provider: exec", "    command: [[run]]"),
		want: "models-resilience.yml:4: models.gpt-5.command: must be strings, not a list"},
	{name: "seed out of range", models: model("    sim: {seed: 99999999999999999999}"),
		want: `models-resilience.yml:3: models.gpt-5.sim.seed: "99999999999999999999" is not a 64-bit whole number`},
}

func TestBadFiles(t *testing.T) {
	t.Setenv("HIVE_TEST_SET", "x")
	groups := map[string][]badFile{
		"syntax": syntaxCases, "keys": keyCases, "types": typeCases,
		"values": valueCases, "models": modelCases, "env": envCases,
	}
	for group, cases := range groups {
		for _, tt := range cases {
			t.Run(group+"/"+tt.name, func(t *testing.T) {
				var global []byte
				if tt.global != "" {
					global = []byte(tt.global)
				}
				c, err := Parse(GlobalFile, global, ModelsFile, []byte(tt.models))
				want := strings.TrimSuffix(tt.want, "\n")
				if err == nil || err.Error() != want {
					t.Fatalf("got error\n%v\nwant\n%s", err, want)
				}
				if c != nil {
					t.Errorf("got a config with the error, want nil")
				}
			})
		}
	}
}

// TestAllErrors checks that every problem of both files is reported, the
// global file's first, each file's by line.
func TestAllErrors(t *testing.T) {
	global := lines(
		"timeout: 3x",
		"strategy: fastest",
	)
	models := lines(
		"models:",
		"  a:",
		"    fallbacks: [b, zz]",
		"    timeout: -1s",
		"  b:",
		"    provider: azure",
		"    bogus: 1",
	)
	_, err := Parse(GlobalFile, []byte(global), ModelsFile, []byte(models))
	want := lines(
		`resilience.yml:1: timeout: "3x" is not a duration (use "30s" or milliseconds)`,
		`resilience.yml:2: strategy: unknown strategy "fastest" (allowed: sequential, parallel, hedged, weighted, random)`,
		`models-resilience.yml:3: models.a.fallbacks: unknown model "zz" (known: b)`,
		`models-resilience.yml:4: models.a.timeout: "-1s" is negative (use "30s" or milliseconds)`,
		`models-resilience.yml:6: models.b.provider: unknown provider "azure" (allowed: openai, anthropic, exec, sim)`,
		`models-resilience.yml:7: models.b.bogus: unknown key (known: apiKeyEnv, circuitBreaker, circuitBreakerThreshold, `+
			`command, contentPolicyFallbacks, contextWindow, contextWindowFallbacks, endpoint, fallbacks, healthCheck, maxConcurrent, `+
			`maxOutputTokens, maxRetries, provider, queueSize, restoration, retry, sim, `+
			`strategy, streaming, supportsPrefill, timeout, upstreamModel, weight)`,
	)
	if err == nil || err.Error()+"\n" != want {
		t.Fatalf("got error\n%v\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != GlobalFile || e.Line != 1 || e.Key != "timeout" {
		t.Errorf("errors.As: got %+v, want the first problem with file, line and key", e)
	}
}

// TestErrorFormat checks the parts of an Error's message that depend on
// which of them are known.
func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"all parts", Error{File: "m.yml", Line: 3, Key: "models.a", Msg: "bad"}, "m.yml:3: models.a: bad"},
		{"no key", Error{File: "m.yml", Line: 3, Msg: "bad"}, "m.yml:3: bad"},
		{"whole file", Error{File: "dir/m.yml", Msg: "file not found"}, "dir/m.yml: file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// manyModels is a models file with n models m00..m(n-1), the last one falling
// back to an unknown model.
func manyModels(n int) string {
	ls := []string{"models:"}
	for i := range n - 1 {
		ls = append(ls, fmt.Sprintf("  m%02d: {}", i))
	}
	return lines(append(ls, fmt.Sprintf("  m%02d: {fallbacks: [nope]}", n-1))...)
}
