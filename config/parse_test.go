package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFlatShape checks that the proposal's flat keys and the nested blocks
// give the same model.
func TestFlatShape(t *testing.T) {
	nested := mustParse(t, "", lines(
		"models:",
		"  a:",
		"    timeout: 20s",
		"    fallbacks: [b]",
		"    retry: {maxRetries: 4}",
		"    circuitBreaker: {failureThreshold: 7}",
		"  b: {}",
	)).Models["a"]
	tests := []struct {
		name, models string
	}{
		{"flat", lines(
			"models:",
			"  a:",
			"    maxRetries: 4",
			"    timeout: 20s",
			"    circuitBreakerThreshold: 7",
			"    fallbacks: ['b']",
			"  b: {}",
		)},
		{"flat and nested agreeing", lines(
			"models:",
			"  a:",
			"    maxRetries: 4",
			"    retry: {maxRetries: 4}",
			"    timeout: 20000",
			"    circuitBreakerThreshold: 7",
			"    circuitBreaker: {failureThreshold: 7}",
			"    fallbacks:",
			"      - b",
			"  b: {}",
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, "", tt.models).Models["a"]
			got.Line, nested.Line = 0, 0
			if !reflect.DeepEqual(got, nested) {
				t.Errorf("got  %+v\nwant %+v", got, nested)
			}
		})
	}
}

// TestInheritance checks that a model takes each key it does not give from
// resilience.yml, block by block and key by key.
func TestInheritance(t *testing.T) {
	global := lines(
		"timeout: 10s",
		"maxConcurrentPerModel: 4",
		"queueSize: 0",
		"strategy: hedged",
		"circuitBreaker: {preset: envoy, openDuration: 30s}",
		"retry: {maxRetries: 1, jitter: 0}",
		"healthCheck: {enabled: false}",
		"streaming: {idleTimeout: 3s}",
	)
	c := mustParse(t, global, lines(
		"models:",
		"  plain: {}",
		"  own:",
		"    timeout: 2s",
		"    maxConcurrent: 2",
		"    queueSize: 5",
		"    strategy: weighted",
		"    weight: 2.5",
		"    circuitBreaker: {failureThreshold: 2}",
		"    retry: {baseDelay: 100ms}",
		"    healthCheck: {interval: 1m}",
		"    streaming: {totalTimeout: 1m}",
	))
	g := c.Global
	wantPlain := *newModel("plain", ModelsFile, 2, &g)
	wantPlain.Provider, wantPlain.ProviderDefaulted, wantPlain.UpstreamModel = ProviderSim, true, "plain"
	if g.Timeout != 10*time.Second || g.CircuitBreaker.Preset != PresetEnvoy || g.CircuitBreaker.Keys.OpenDuration != 30*time.Second {
		t.Fatalf("global: got %+v, want the file's keys over the defaults", g)
	}

	wantOwn := *newModel("own", ModelsFile, 3, &g)
	wantOwn.Provider, wantOwn.ProviderDefaulted, wantOwn.UpstreamModel = ProviderSim, true, "own"
	wantOwn.Timeout, wantOwn.MaxConcurrent, wantOwn.QueueSize = 2*time.Second, 2, 5
	wantOwn.Strategy, wantOwn.Weight = StrategyWeighted, 2.5
	wantOwn.CircuitBreaker.Keys.ConsecutiveFailures = 2
	wantOwn.Retry.BaseDelay = 100 * time.Millisecond
	wantOwn.HealthCheck.Interval = time.Minute
	wantOwn.Streaming.TotalTimeout = time.Minute

	tests := []struct {
		name string
		want Model
	}{
		{"plain", wantPlain},
		{"own", wantOwn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := *c.Models[tt.name]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	// Spot checks, so that the test does not only compare newModel with itself.
	own := c.Models["own"]
	if own.CircuitBreaker.Preset != PresetEnvoy || own.CircuitBreaker.Keys.OpenDuration != 30*time.Second ||
		own.Retry.MaxRetries != 1 || own.HealthCheck.Enabled || own.Streaming.IdleTimeout != 3*time.Second {
		t.Errorf("own: got %+v, want the global keys it does not give", own)
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"seconds", "30s", 30 * time.Second},
		{"minutes and seconds", "1m30s", 90 * time.Second},
		{"milliseconds unit", "250ms", 250 * time.Millisecond},
		{"fraction", "1.5s", 1500 * time.Millisecond},
		{"plain integer is milliseconds", "30000", 30 * time.Second},
		{"quoted integer is milliseconds", `"30000"`, 30 * time.Second},
		{"hours", "1h", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "", lines("models:", "  a:", "    timeout: "+tt.value))
			if got := c.Models["a"].Timeout; got != tt.want {
				t.Errorf("timeout: %s: got %v, want %v", tt.value, got, tt.want)
			}
		})
	}
	t.Run("zero where allowed", func(t *testing.T) {
		c := mustParse(t, "shutdownGrace: 0\n", lines("models:", "  a:", "    sim: {latency: 0, tokenDelay: 0s}"))
		if c.Global.ShutdownGrace != 0 || c.Models["a"].Sim.Latency != 0 || c.Models["a"].Sim.TokenDelay != 0 {
			t.Errorf("got shutdownGrace %v, latency %v, tokenDelay %v; want 0, 0, 0",
				c.Global.ShutdownGrace, c.Models["a"].Sim.Latency, c.Models["a"].Sim.TokenDelay)
		}
	})
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("HIVE_TEST_TIMEOUT", "7s")
	t.Setenv("HIVE_TEST_HOST", "gpu-1")
	t.Setenv("HIVE_TEST_EMPTY", "")
	tests := []struct {
		name, value, want string
	}{
		{"whole value", "${HIVE_TEST_HOST}", "gpu-1"},
		{"inside text", "http://${HIVE_TEST_HOST}:8000/v1", "http://gpu-1:8000/v1"},
		{"default unused", "${HIVE_TEST_HOST:-other}", "gpu-1"},
		{"default for unset", "${HIVE_TEST_UNSET:-http://localhost:11434/v1}", "http://localhost:11434/v1"},
		{"default for empty", "${HIVE_TEST_EMPTY:-fallback}", "fallback"},
		{"set but empty", "x${HIVE_TEST_EMPTY}y", "xy"},
		{"escaped", "$${HIVE_TEST_HOST}", "${HIVE_TEST_HOST}"},
		{"two variables", "${HIVE_TEST_HOST}-${HIVE_TEST_TIMEOUT}", "gpu-1-7s"},
		{"lone dollar", "a$b", "a$b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expand(tt.value)
			if err != nil || got != tt.want {
				t.Errorf("expand(%q): got %q, %v; want %q, nil", tt.value, got, err, tt.want)
			}
		})
	}

	t.Run("typed values and lists", func(t *testing.T) {
		c := mustParse(t, "timeout: ${HIVE_TEST_TIMEOUT}\n", lines(
			"models:",
			"  a:",
			"    provider: openai",
			"    endpoint: https://${HIVE_TEST_HOST}/v1",
			"    maxConcurrent: ${HIVE_TEST_UNSET:-3}",
			"    fallbacks: [b]",
			"  b:",
			"    provider: exec",
			"    command: [run, --host, '${HIVE_TEST_HOST}', '{prompt}']",
		))
		a, b := c.Models["a"], c.Models["b"]
		if c.Global.Timeout != 7*time.Second || a.Timeout != 7*time.Second {
			t.Errorf("timeout: got global %v, model %v; want 7s, 7s", c.Global.Timeout, a.Timeout)
		}
		if a.Endpoint != "https://gpu-1/v1" || a.MaxConcurrent != 3 {
			t.Errorf("got endpoint %q, maxConcurrent %d; want %q, 3", a.Endpoint, a.MaxConcurrent, "https://gpu-1/v1")
		}
		if want := []string{"run", "--host", "gpu-1", "{prompt}"}; !slices.Equal(b.Command, want) {
			t.Errorf("command: got %q, want %q", b.Command, want)
		}
	})
}

func TestProviderDefaults(t *testing.T) {
	c := mustParse(t, "", lines(
		"models:",
		"  o: {provider: openai}",
		"  an: {provider: anthropic, upstreamModel: claude-x}",
		"  e: {provider: exec, command: [run]}",
		"  s: {provider: sim}",
		"  d: {}",
	))
	tests := []struct {
		name, provider, endpoint, upstream string
		defaulted, hasSim                  bool
	}{
		{"o", ProviderOpenAI, DefaultOpenAIEndpoint, "o", false, false},
		{"an", ProviderAnthropic, DefaultAnthropicEndpoint, "claude-x", false, false},
		{"e", ProviderExec, "", "e", false, false},
		{"s", ProviderSim, "", "s", false, true},
		{"d", ProviderSim, "", "d", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := c.Models[tt.name]
			if m.Provider != tt.provider || m.Endpoint != tt.endpoint || m.UpstreamModel != tt.upstream || m.ProviderDefaulted != tt.defaulted {
				t.Errorf("got provider %q endpoint %q upstream %q defaulted %v; want %q %q %q %v",
					m.Provider, m.Endpoint, m.UpstreamModel, m.ProviderDefaulted, tt.provider, tt.endpoint, tt.upstream, tt.defaulted)
			}
			if got := m.Sim != (Sim{}); got != tt.hasSim {
				t.Errorf("sim settings: got %+v, want set %v", m.Sim, tt.hasSim)
			}
		})
	}
	s := c.Models["s"].Sim
	want := Sim{Latency: 20 * time.Millisecond, ErrorClass: "server_error", Seed: seedOf("s"), TokenDelay: 5 * time.Millisecond}
	if s != want {
		t.Errorf("sim defaults: got %+v, want %+v", s, want)
	}
	if seedOf("s") != seedOf("s") || seedOf("s") == seedOf("d") {
		t.Errorf("seedOf: got %d for s twice and %d for d, want stable and distinct", seedOf("s"), seedOf("d"))
	}
}

// TestAnchors checks YAML aliases and merge keys, which let models share a block.
func TestAnchors(t *testing.T) {
	c := mustParse(t, "", lines(
		"models:",
		"  a: &base",
		"    timeout: 5s",
		"    circuitBreaker: &breaker {failureThreshold: 2, openDuration: 10s}",
		"  b:",
		"    <<: *base",
		"    timeout: 6s",
		"  c:",
		"    circuitBreaker: *breaker",
		"  d:",
		"    <<: [*base]",
		"    fallbacks: [a, b, c]",
	))
	tests := []struct {
		name      string
		timeout   time.Duration
		threshold int
	}{
		{"a", 5 * time.Second, 2},
		{"b", 6 * time.Second, 2},
		{"c", 30 * time.Second, 2},
		{"d", 5 * time.Second, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := c.Models[tt.name]
			if b := m.BreakerConfig(); m.Timeout != tt.timeout || b.ConsecutiveFailures != tt.threshold || b.OpenDuration != 10*time.Second {
				t.Errorf("got timeout %v, breaker %+v; want %v, threshold %d, open 10s", m.Timeout, m.CircuitBreaker, tt.timeout, tt.threshold)
			}
		})
	}
}

func TestSelfMerge(t *testing.T) {
	c := mustParse(t, "", lines("models:", "  a: &a", "    <<: *a", "    timeout: 5s"))
	if got := c.Models["a"].Timeout; got != 5*time.Second {
		t.Errorf("timeout: got %v, want 5s", got)
	}
}

// TestSecretsNotEchoed checks that no message quotes an environment value
// or an apiKeyEnv that holds a key.
func TestSecretsNotEchoed(t *testing.T) {
	t.Setenv("HIVE_TEST_SECRET", "s3cr3t-value")
	_, err := parseModels(t, lines(
		"models:",
		"  a:",
		"    timeout: ${HIVE_TEST_SECRET}",
		"    provider: openai",
		"    apiKeyEnv: sk-live-0123456789",
	))
	if err == nil {
		t.Fatal("got no error, want two")
	}
	for _, secret := range []string{"s3cr3t", "sk-live"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("got %q in\n%v\nwant it never echoed", secret, err)
		}
	}
}
