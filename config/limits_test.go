package config

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestLimitsDefaults(t *testing.T) {
	c := mustParse(t, "", lines(
		"models:",
		"  gpt-4o: {provider: openai}", // the known values
		"  proxied: {provider: openai, endpoint: 'https://proxy.example/v1', upstreamModel: gpt-4o}", // another server: unknown
		"  own: {provider: openai, upstreamModel: gpt-4o, contextWindow: 64000}",                     // the file wins, key by key
		"  off: {provider: openai, upstreamModel: gpt-4o, contextWindow: 0, maxOutputTokens: 0}",     // 0: unknown, on purpose
		"  sonnet: {provider: anthropic, upstreamModel: claude-sonnet-4-20250514}",
		"  gemini: {provider: openai, endpoint: 'https://generativelanguage.googleapis.com/v1beta/openai/', upstreamModel: gemini-2.5-pro}",
		"  local: {provider: sim}",                                      // no upstream: unknown
		"  guess: {provider: openai, upstreamModel: gpt-4o-2024-05-13}", // a snapshot the table does not list: unknown, not guessed
	))
	for _, w := range []struct {
		model          string
		window, output int
	}{
		{"gpt-4o", 128_000, 16_384},
		{"proxied", 0, 0},
		{"own", 64_000, 16_384},
		{"off", 0, 0},
		{"sonnet", 200_000, 64_000},
		{"gemini", 1_048_576, 65_536},
		{"local", 0, 0},
		{"guess", 0, 0},
	} {
		m := c.Models[w.model]
		if m.ContextWindow != w.window || m.MaxOutputTokens != w.output {
			t.Errorf("%s: got contextWindow %d, maxOutputTokens %d; want %d, %d", w.model, m.ContextWindow, m.MaxOutputTokens, w.window, w.output)
		}
	}
}

func TestLimitsFallbacks(t *testing.T) {
	c := mustParse(t, "", lines(
		"models:",
		"  small: {contextWindow: 8000, contextWindowFallbacks: [large], contentPolicyFallbacks: [other, large]}",
		"  large: {contextWindow: 128000}",
		"  other: {}",
	))
	m := c.Models["small"]
	if !slices.Equal(m.ContextWindowFallbacks, []string{"large"}) || !slices.Equal(m.ContentPolicyFallbacks, []string{"other", "large"}) {
		t.Errorf("got contextWindowFallbacks %v, contentPolicyFallbacks %v; want [large], [other large]", m.ContextWindowFallbacks, m.ContentPolicyFallbacks)
	}
	if o := c.Models["other"]; o.ContextWindowFallbacks != nil || o.ContentPolicyFallbacks != nil {
		t.Errorf("other: got %v and %v, want no fallbacks of either kind by default", o.ContextWindowFallbacks, o.ContentPolicyFallbacks)
	}
}

func TestLimitsBad(t *testing.T) {
	for _, c := range []struct{ name, models, want string }{
		{"negative window", lines("models:", "  a: {contextWindow: -1}"),
			`models-resilience.yml:2: models.a.contextWindow: "-1" is too small (must be at least 0)`},
		{"output above the window", lines("models:", "  a: {contextWindow: 1000, maxOutputTokens: 2000}"),
			`models-resilience.yml:2: models.a.contextWindow: must be at least maxOutputTokens`},
		{"output above a known window", lines("models:", "  a: {provider: openai, upstreamModel: gpt-4o, maxOutputTokens: 200000}"),
			`models-resilience.yml:2: models.a.maxOutputTokens: must be at most contextWindow`},
		{"unknown context fallback", lines("models:", "  a: {contextWindowFallbacks: [zz]}", "  b: {}"),
			`models-resilience.yml:2: models.a.contextWindowFallbacks: unknown model "zz" (known: b)`},
		{"itself as a policy fallback", lines("models:", "  a: {contentPolicyFallbacks: [a]}"),
			`models-resilience.yml:2: models.a.contentPolicyFallbacks: "a" is the model itself (list other models)`},
		{"a policy fallback twice", lines("models:", "  a: {contentPolicyFallbacks: [b, b]}", "  b: {}"),
			`models-resilience.yml:2: models.a.contentPolicyFallbacks: "b" is listed twice (first at line 2)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseModels(t, c.models)
			if err == nil || err.Error() != c.want {
				t.Errorf("got error\n%v\nwant\n%s", err, c.want)
			}
		})
	}
}

// TestLimitsDoc keeps docs/context-windows.md's "Known limits" tables and
// knownLimits equal: the doc has a row for every model the code knows, with
// the same values, and no other row.
func TestLimitsDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/context-windows.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(data)
	start := strings.Index(section, "\n## Known limits\n")
	if start < 0 {
		t.Fatal(`docs/context-windows.md: got no "## Known limits" section`)
	}
	section = section[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	got := map[string]string{} // "endpoint model" -> "window output"
	endpoint := ""
	for _, l := range strings.Split(section, "\n") {
		if e, ok := strings.CutPrefix(l, "Endpoint `"); ok {
			endpoint, _, _ = strings.Cut(e, "`")
			continue
		}
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "| "), " | ")
		if len(cells) < 3 {
			t.Errorf("docs/context-windows.md: row %q has fewer than 3 cells", l)
			continue
		}
		got[endpoint+" "+strings.Trim(cells[0], "`")] = cells[1] + " " + cells[2]
	}
	want := map[string]string{}
	for endpoint, models := range knownLimits {
		for name, l := range models {
			want[endpoint+" "+name] = thousands(l.ContextWindow) + " " + thousands(l.MaxOutputTokens)
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("docs/context-windows.md: %s: got %q, want a row with %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("docs/context-windows.md: %s has a row, but config/limits.go does not know it", k)
		}
	}
}

// thousands writes n with commas: 1,048,576.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
