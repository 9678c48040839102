package config

// The bad files whose problem is a value's meaning rather than its type:
// names, providers, fallbacks, keys that bound one another, ${VAR}.

var valueCases = []badFile{
	{name: "unknown provider", models: model("    provider: azure"),
		want: `models-resilience.yml:3: models.gpt-5.provider: unknown provider "azure" (allowed: openai, anthropic, exec, sim)`},
	{name: "unknown model strategy", models: model("    strategy: fastest"),
		want: `models-resilience.yml:3: models.gpt-5.strategy: unknown strategy "fastest" (allowed: sequential, parallel, hedged, weighted, random)`},
	{name: "unknown global strategy", global: "strategy: Sequential\n", models: okModels,
		want: `resilience.yml:1: strategy: unknown strategy "Sequential" (allowed: sequential, parallel, hedged, weighted, random)`},
	{name: "unknown preset", models: model("    circuitBreaker: {preset: polly}"),
		want: `models-resilience.yml:3: models.gpt-5.circuitBreaker.preset: unknown preset "polly" (allowed: bip03, gobreaker, resilience4j, hystrix, envoy)`},
	{name: "unknown error class", models: model("    sim: {errorClass: boom}"),
		want: `models-resilience.yml:3: models.gpt-5.sim.errorClass: unknown error class "boom" (allowed: ` + failureClasses + `)`},
	{name: "ok is no error class", models: model("    sim:", "      errorClass: ok"),
		want: `models-resilience.yml:4: models.gpt-5.sim.errorClass: "ok" is not a failure (allowed: ` + failureClasses + `)`},
	{name: "subject prefix with a dot", global: "subjectPrefix: hive.v1\n", models: okModels,
		want: `resilience.yml:1: subjectPrefix: "hive.v1" is not a single NATS subject token (use letters, digits, "-" and "_")`},
	{name: "subject prefix wildcard", global: "subjectPrefix: '>'\n", models: okModels,
		want: `resilience.yml:1: subjectPrefix: ">" is not a single NATS subject token (use letters, digits, "-" and "_")`},
	{name: "openai endpoint without scheme", models: model("    provider: openai", "    endpoint: api.openai.com/v1"),
		want: `models-resilience.yml:4: models.gpt-5.endpoint: "api.openai.com/v1" is not an http(s) URL (such as "https://api.openai.com/v1")`},
	{name: "anthropic endpoint not http", models: model("    provider: anthropic", "    endpoint: ftp://example.com"),
		want: `models-resilience.yml:4: models.gpt-5.endpoint: "ftp://example.com" is not an http(s) URL (such as "https://api.openai.com/v1")`},
	{name: "apiKeyEnv holding a key", models: model("    provider: openai", "    apiKeyEnv: sk-abc123"),
		want: "models-resilience.yml:4: models.gpt-5.apiKeyEnv: is not an environment variable name (give the NAME " +
			"of the variable that holds the key, such as OPENAI_API_KEY, never the key itself)"},
	{name: "maxOpenDuration below openDuration", global: lines("circuitBreaker:", "  openDuration: 2m", "  maxOpenDuration: 1m"), models: okModels,
		want: "resilience.yml:3: circuitBreaker.maxOpenDuration: must be at least openDuration"},
	{name: "model openDuration above inherited cap", models: model("    circuitBreaker: {openDuration: 400s}"),
		want: "models-resilience.yml:3: models.gpt-5.circuitBreaker.openDuration: must be at most maxOpenDuration"},
	{name: "maxDelay below baseDelay", models: model("    retry:", "      baseDelay: 1m"),
		want: "models-resilience.yml:4: models.gpt-5.retry.baseDelay: must be at most maxDelay"},
	{name: "sim jitter above latency", models: model("    sim: {latency: 10ms, jitter: 20ms}"),
		want: "models-resilience.yml:3: models.gpt-5.sim.latency: must be at least jitter"},
	{name: "responseTime not increasing", global: lines("degradation:", "  responseTime: [5s, 8s, 8s, 30s]"), models: okModels,
		want: "resilience.yml:2: degradation.responseTime: must be strictly increasing from minimal to critical"},
	{name: "successRate not decreasing", global: lines("degradation:", "  successRate: [0.6, 0.8, 0.9, 0.95]"), models: okModels,
		want: "resilience.yml:2: degradation.successRate: must be strictly decreasing from minimal to critical"},
	{name: "successRate above 1", global: lines("degradation:", "  successRate:", "    - 1.5", "    - 0.9", "    - 0.8", "    - 0.6"), models: okModels,
		want: `resilience.yml:3: degradation.successRate: "1.5" is out of range (must be in (0, 1])`},
	{name: "three levels", global: "degradation: {responseTime: [5s, 8s, 15s]}\n", models: okModels,
		want: "resilience.yml:1: degradation.responseTime: must be a list of four values (minimal, moderate, severe, critical)"},
	{name: "flat maxRetries conflicting", models: model("    maxRetries: 2", "    retry: {maxRetries: 5}"),
		want: "models-resilience.yml:3: models.gpt-5.maxRetries: conflicts with models.gpt-5.retry.maxRetries (give one of them, or the same value)"},
	{name: "flat threshold conflicting", models: model("    circuitBreaker:", "      failureThreshold: 4", "    circuitBreakerThreshold: 6"),
		want: "models-resilience.yml:5: models.gpt-5.circuitBreakerThreshold: conflicts with models.gpt-5.circuitBreaker.failureThreshold (give one of them, or the same value)"},
}

// failureClasses is every error class but ok, as messages list them.
const failureClasses = "timeout, connection, server_error, overloaded, rate_limited, auth, bad_request, " +
	"context_length, content_policy, cancelled, malformed, stream_cut, stream_stall, circuit_open, no_capacity, all_failed"

const nameRule = `is not allowed (use letters, digits, "-" and "_": it becomes a NATS subject token)`

var modelCases = []badFile{
	{name: "model name with a dot", models: lines("models:", "  gpt.5: {}"),
		want: `models-resilience.yml:2: models."gpt.5": model name "gpt.5" ` + nameRule},
	{name: "model name with a space", models: lines("models:", "  gpt 5: {}"),
		want: `models-resilience.yml:2: models."gpt 5": model name "gpt 5" ` + nameRule},
	{name: "model name wildcard", models: lines("models:", "  '*': {}", "  '>': {}"),
		want: lines(
			`models-resilience.yml:2: models."*": model name "*" `+nameRule,
			`models-resilience.yml:3: models.">": model name ">" `+nameRule)},
	{name: "empty model name", models: lines("models:", "  '': {}"),
		want: `models-resilience.yml:2: models."": model name "" ` + nameRule},
	{name: "problem inside a badly named model", models: lines("models:", "  a.b:", "    timeout: 3x"),
		want: lines(
			`models-resilience.yml:2: models."a.b": model name "a.b" `+nameRule,
			`models-resilience.yml:3: models."a.b".timeout: "3x" is not a duration (use "30s" or milliseconds)`)},
	{name: "unknown fallback", models: lines("models:", "  claude-4-sonnet: {}", "  deepseek-v3: {}", "  gemini-2-5-pro: {}",
		"  grok-3: {}", "  gpt-5:", "    provider: sim", "    timeout: 30s", "    maxRetries: 3", "    sim: {latency: 30ms}",
		"    fallbacks:", "      - claude-4-sonnet", "      - gpt-6"),
		want: `models-resilience.yml:13: models.gpt-5.fallbacks: unknown model "gpt-6" (known: claude-4-sonnet, deepseek-v3, gemini-2-5-pro, grok-3)`},
	{name: "unknown fallback among many models", models: manyModels(12),
		want: `models-resilience.yml:13: models.m11.fallbacks: unknown model "nope" (known: m00, m01, m02, m03, m04, m05, m06, m07, m08, m09, ... 1 more)`},
	{name: "model falling back to itself", models: model("    fallbacks: [gpt-5]"),
		want: `models-resilience.yml:3: models.gpt-5.fallbacks: "gpt-5" is the model itself (list other models)`},
	{name: "fallback listed twice", models: lines("models:", "  a:", "    fallbacks:", "      - b", "      - c", "      - b", "  b: {}", "  c: {}"),
		want: `models-resilience.yml:6: models.a.fallbacks: "b" is listed twice (first at line 4)`},
	{name: "exec without command", models: lines("models:", "  a: {}", "  agent:", "    provider: exec"),
		want: `models-resilience.yml:3: models.agent.command: required for provider exec: the program and its arguments, such as ["aider", "--message", "{prompt}"]`},
	{name: "exec with empty command", models: model("    provider: exec", "    command: []"),
		want: `models-resilience.yml:4: models.gpt-5.command: required for provider exec: the program and its arguments, such as ["aider", "--message", "{prompt}"]`},
	{name: "exec with empty program", models: model("    provider: exec", "    command:", "      - ''", "      - '{prompt}'"),
		want: "models-resilience.yml:5: models.gpt-5.command: the program (first item) is empty"},
	{name: "sim block on openai", models: model("    provider: openai", "    sim: {latency: 5ms}"),
		want: "models-resilience.yml:4: models.gpt-5.sim: only used by provider sim (this model's provider is openai)"},
	{name: "command on anthropic", models: model("    provider: anthropic", "    command: [run]"),
		want: "models-resilience.yml:4: models.gpt-5.command: only used by provider exec (this model's provider is anthropic)"},
	{name: "HTTP keys without provider", models: model("    endpoint: https://api.openai.com/v1", "    apiKeyEnv: OPENAI_API_KEY"),
		want: lines(
			"models-resilience.yml:3: models.gpt-5.endpoint: only used by providers openai and anthropic (this model's provider is sim, the default when provider is omitted)",
			"models-resilience.yml:4: models.gpt-5.apiKeyEnv: only used by providers openai and anthropic (this model's provider is sim, the default when provider is omitted)")},
	{name: "upstreamModel on exec", models: model("    provider: exec", "    command: [run]", "    upstreamModel: x"),
		want: "models-resilience.yml:5: models.gpt-5.upstreamModel: only used by providers openai and anthropic (this model's provider is exec)"},
}

var envCases = []badFile{
	{name: "unset variable", models: model("    provider: openai", "    endpoint: ${HIVE_TEST_UNSET}"),
		want: "models-resilience.yml:4: models.gpt-5.endpoint: environment variable HIVE_TEST_UNSET is not set (set it, or write ${HIVE_TEST_UNSET:-default})"},
	{name: "unset variable in a list", models: model("    provider: exec", "    command: [run, '${HIVE_TEST_UNSET}']"),
		want: "models-resilience.yml:4: models.gpt-5.command: environment variable HIVE_TEST_UNSET is not set (set it, or write ${HIVE_TEST_UNSET:-default})"},
	{name: "unset variable in global file", global: "timeout: ${HIVE_TEST_UNSET}\n", models: okModels,
		want: "resilience.yml:1: timeout: environment variable HIVE_TEST_UNSET is not set (set it, or write ${HIVE_TEST_UNSET:-default})"},
	{name: "bad variable name", models: model("    timeout: ${1X}"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: bad variable reference "${1X}" (use ${NAME} or ${NAME:-default})`},
	{name: "unterminated reference", models: model("    timeout: ${HIVE_TEST_SET"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "${HIVE_TEST_SET" has no closing "}" (use ${NAME} or ${NAME:-default})`},
	{name: "expanded value is invalid", models: model("    timeout: ${HIVE_TEST_SET}"),
		want: `models-resilience.yml:3: models.gpt-5.timeout: "${HIVE_TEST_SET}" is not a duration (use "30s" or milliseconds)`},
}
