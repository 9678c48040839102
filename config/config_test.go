package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

var defaultOrder = []string{"claude-4-sonnet", "gpt-5", "deepseek-v3", "gemini-2-5-pro", "grok-3"}

func TestDefaultFiles(t *testing.T) {
	tests := []struct {
		name string
		load func() (*Config, error)
	}{
		{"Defaults", Defaults},
		{"Load package dir", func() (*Config, error) { return Load(".") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.load()
			if err != nil {
				t.Fatalf("got error\n%v\nwant none", err)
			}
			if got, want := c.Global, defaultGlobal(); !reflect.DeepEqual(got, want) {
				t.Errorf("Global:\ngot  %+v\nwant %+v", got, want)
			}
			if !slices.Equal(c.Order, defaultOrder) {
				t.Errorf("Order: got %v, want %v", c.Order, defaultOrder)
			}
			fallbacks := map[string][]string{
				"claude-4-sonnet": {"gpt-5", "deepseek-v3"},
				"gpt-5":           {"claude-4-sonnet", "gemini-2-5-pro"},
				"deepseek-v3":     {"grok-3", "gpt-5"},
				"gemini-2-5-pro":  {"claude-4-sonnet", "gpt-5"},
				"grok-3":          {"deepseek-v3", "gemini-2-5-pro"},
			}
			for name, want := range fallbacks {
				m := c.Models[name]
				if m == nil {
					t.Fatalf("model %s: missing", name)
				}
				if !slices.Equal(m.Fallbacks, want) {
					t.Errorf("%s fallbacks: got %v, want %v", name, m.Fallbacks, want)
				}
				if m.Provider != ProviderSim || m.ProviderDefaulted || m.APIKeyEnv != "" {
					t.Errorf("%s: got provider %q (defaulted %v, apiKeyEnv %q), want sim given, no key",
						name, m.Provider, m.ProviderDefaulted, m.APIKeyEnv)
				}
				if m.Sim.FailureRate != 0 || m.Sim.Latency < 20*time.Millisecond || m.Sim.Latency > 60*time.Millisecond || m.Sim.Jitter == 0 {
					t.Errorf("%s sim: got %+v, want latency 20-60ms with jitter, failureRate 0", name, m.Sim)
				}
			}
			claude := c.Models["claude-4-sonnet"]
			if claude.Retry.MaxRetries != 3 || claude.Timeout != 30*time.Second || claude.CircuitBreaker.Keys.ConsecutiveFailures != 5 {
				t.Errorf("claude-4-sonnet flat keys: got maxRetries %d, timeout %v, threshold %d; want 3, 30s, 5",
					claude.Retry.MaxRetries, claude.Timeout, claude.CircuitBreaker.Keys.ConsecutiveFailures)
			}
			gpt := c.Models["gpt-5"]
			wantBreaker := Breaker{Preset: PresetBIP03}
			wantBreaker.Keys.ConsecutiveFailures = 5
			wantBreaker.Keys.OpenDuration = 30 * time.Second
			if gpt.CircuitBreaker != wantBreaker || gpt.Retry.MaxRetries != 2 || gpt.Timeout != 25*time.Second {
				t.Errorf("gpt-5 nested blocks: got breaker %+v, maxRetries %d, timeout %v; want %+v, 2, 25s",
					gpt.CircuitBreaker, gpt.Retry.MaxRetries, gpt.Timeout, wantBreaker)
			}
		})
	}
}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// TestGlobalFileGivesEveryKey keeps resilience.yml a complete reference: it
// must write out every global key, commented out where the default depends
// on other keys.
func TestGlobalFileGivesEveryKey(t *testing.T) {
	d := newDecoder(GlobalFile)
	var g Global
	root, _ := d.document([]byte(uncomment(string(defaultGlobalFile))))
	d.fields(root, "", d.globalFields(&g))
	if len(d.errs) > 0 {
		t.Fatalf("decoding %s uncommented: got %v, want no error", GlobalFile, d.errs)
	}
	var want []string
	for key := range d.globalFields(&Global{}) {
		want = append(want, key)
	}
	for block, fs := range globalBlocks(d) {
		for key := range fs {
			want = append(want, block+"."+key)
		}
	}
	seen := make(map[string]bool)
	for key := range d.seen { // list items count for the list: webhooks[0].url is webhooks[].url
		seen[listIndex.ReplaceAllString(key, "[]")] = true
	}
	for _, key := range want {
		if !seen[key] {
			t.Errorf("%s: got no %s, want every key written out", GlobalFile, key)
		}
	}
}

// TestGlobalFileCommentedValues checks that the keys resilience.yml writes
// commented out show the values they take: uncommented, they change nothing
// but the time window's keys, which the count window ignores, and the
// example webhooks.
func TestGlobalFileCommentedValues(t *testing.T) {
	c := mustParse(t, uncomment(string(defaultGlobalFile)), okModels)
	want, _ := resilience.Preset(PresetBIP03)
	want.WindowDuration, want.WindowBuckets = time.Minute, 10
	if got := c.Models["a"].BreakerConfig(); got != want {
		t.Errorf("breaker:\ngot  %+v\nwant %+v", got, want)
	}
	commented := Breaker{Preset: PresetBIP03, Keys: want}
	commented.Keys.MinimumCalls, commented.Keys.FailureRate, commented.Keys.SlowRate, commented.Keys.SlowCall = -1, -1, -1, -1
	if got := c.Global.CircuitBreaker; got != commented {
		t.Errorf("circuitBreaker keys:\ngot  %+v\nwant %+v", got, commented)
	}
	wantGlobal := defaultGlobal()
	wantGlobal.CircuitBreaker = commented
	wantGlobal.Restoration.MaxHold = 30 * time.Second // three holds of 30s / 3
	wantGlobal.Alerts.Webhooks = []Webhook{           // the examples
		{URLEnv: "SLACK_WEBHOOK_URL", Format: "slack", MinSeverity: messages.Alert_warning, Timeout: 5 * time.Second, Retries: 3},
		{URL: "http://127.0.0.1:9000/alerts", Format: "json", MinSeverity: messages.Alert_warning, Timeout: 5 * time.Second, Retries: 3},
	}
	if !reflect.DeepEqual(c.Global, wantGlobal) {
		t.Errorf("Global:\ngot  %+v\nwant %+v", c.Global, wantGlobal)
	}
}

// TestExamples checks that the commented-out examples of models-resilience.yml
// work once uncommented.
func TestExamples(t *testing.T) {
	t.Setenv("OLLAMA_URL", "")
	text := uncomment(string(defaultModelsFile))
	c := mustParse(t, "", text)
	wantOrder := append(slices.Clone(defaultOrder), "gpt-4o", "claude-sonnet-4", "llama-local", "aider")
	if !slices.Equal(c.Order, wantOrder) {
		t.Fatalf("Order: got %v, want %v", c.Order, wantOrder)
	}
	tests := []struct {
		model, provider, endpoint, keyEnv, upstream string
	}{
		{"gpt-4o", ProviderOpenAI, DefaultOpenAIEndpoint, "OPENAI_API_KEY", "gpt-4o"},
		{"claude-sonnet-4", ProviderAnthropic, DefaultAnthropicEndpoint, "ANTHROPIC_API_KEY", "claude-sonnet-4-20250514"},
		{"llama-local", ProviderOpenAI, "http://localhost:11434/v1", "", "llama3.2"},
		{"aider", ProviderExec, "", "", "aider"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			m := c.Models[tt.model]
			got := []string{m.Provider, m.Endpoint, m.APIKeyEnv, m.UpstreamModel}
			want := []string{tt.provider, tt.endpoint, tt.keyEnv, tt.upstream}
			if !slices.Equal(got, want) {
				t.Errorf("provider, endpoint, apiKeyEnv, upstreamModel: got %q, want %q", got, want)
			}
		})
	}
	wantCommand := []string{"aider", "--no-pretty", "--message", "{prompt}"}
	if got := c.Models["aider"].Command; !slices.Equal(got, wantCommand) {
		t.Errorf("aider command: got %q, want %q", got, wantCommand)
	}
	gpt := c.Models["gpt-5"].Sim
	if gpt.Seed != 42 || gpt.Reply != "Hello." {
		t.Errorf("gpt-5 sim example: got seed %d reply %q, want 42 %q", gpt.Seed, gpt.Reply, "Hello.")
	}
}

func TestLoad(t *testing.T) {
	models := []byte(lines("models:", "  a: {}"))
	tests := []struct {
		name    string
		files   map[string][]byte // a nil content makes a directory
		wantErr string
	}{
		{"models file only", map[string][]byte{ModelsFile: models}, ""},
		{"both files", map[string][]byte{ModelsFile: models, GlobalFile: []byte("timeout: 3s\n")}, ""},
		{"no models file", map[string][]byte{GlobalFile: []byte("timeout: 3s\n")},
			"{dir}/models-resilience.yml: file not found (pass --config-dir)"},
		{"empty dir", nil, "{dir}/models-resilience.yml: file not found (pass --config-dir)"},
		{"models file is a directory", map[string][]byte{ModelsFile: nil},
			"{dir}/models-resilience.yml: cannot read: is a directory"},
		{"bad global file", map[string][]byte{ModelsFile: models, GlobalFile: []byte("timeout: 3x\n")},
			`{dir}/resilience.yml:1: timeout: "3x" is not a duration (use "30s" or milliseconds)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				var err error
				if data == nil {
					err = os.Mkdir(filepath.Join(dir, name), 0o700)
				} else {
					err = os.WriteFile(filepath.Join(dir, name), data, 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(dir)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("got %v, want a config", err)
				}
				want := defaultGlobal()
				if tt.files[GlobalFile] != nil {
					want.Timeout = 3 * time.Second
				}
				if !reflect.DeepEqual(c.Global, want) {
					t.Errorf("Global:\ngot  %+v\nwant %+v", c.Global, want)
				}
				return
			}
			want := replaceDir(tt.wantErr, dir)
			if err == nil || err.Error() != want {
				t.Fatalf("got error\n%v\nwant\n%s", err, want)
			}
			if c != nil {
				t.Errorf("got config %+v with the error, want nil", c)
			}
		})
	}
}

func replaceDir(s, dir string) string {
	return filepath.Join(dir, s[len("{dir}/"):])
}

func TestLoadMissingIsNotExist(t *testing.T) {
	_, err := Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist): got false, want true", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 0 || e.Key != "" {
		t.Errorf("errors.As: got %#v, want an *Error without line or key", e)
	}
}

func TestAPIKey(t *testing.T) {
	t.Setenv("HIVE_TEST_KEY", "k-123")
	tests := []struct {
		name, env, want string
	}{
		{"set", "HIVE_TEST_KEY", "k-123"},
		{"unset", "HIVE_TEST_NO_SUCH_KEY", ""},
		{"no variable named", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Model{APIKeyEnv: tt.env}
			if got := m.APIKey(); got != tt.want {
				t.Errorf("APIKey(): got %q, want %q", got, tt.want)
			}
		})
	}
}
