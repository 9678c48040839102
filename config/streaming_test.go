package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStreamingRescue: the continuation and malformed-event keys, their
// defaults, inheritance and errors, and supportsPrefill's default by
// provider.
func TestStreamingRescue(t *testing.T) {
	c := mustParse(t, lines("streaming: {maxContinuations: 2}"), lines(
		"models:",
		"  plain: {}",
		"  strict: {streaming: {onMalformed: fail, maxContinuations: 0}}",
		"  claude: {provider: anthropic}",
		"  gpt: {provider: openai}",
		"  deepseek: {provider: openai, supportsPrefill: true}",
		"  picky: {provider: anthropic, supportsPrefill: false}",
		"  sims: {sim: {rejectPrefill: true}, supportsPrefill: true}",
	))
	assert.Equal(t, 2, c.Models["plain"].Streaming.MaxContinuations, "inherited")
	assert.Equal(t, MalformedSkip, c.Models["plain"].Streaming.OnMalformed, "the default")
	assert.Equal(t, 0, c.Models["strict"].Streaming.MaxContinuations)
	assert.Equal(t, MalformedFail, c.Models["strict"].Streaming.OnMalformed)
	for name, want := range map[string]bool{"plain": false, "claude": true, "gpt": false, "deepseek": true, "picky": false, "sims": true} {
		assert.Equal(t, want, c.Models[name].SupportsPrefill, name)
	}
	assert.True(t, c.Models["sims"].Sim.RejectPrefill)

	d := mustParse(t, "", lines("models:", "  m: {}"))
	assert.Equal(t, 1, d.Models["m"].Streaming.MaxContinuations, "default 1")

	_, err := parseModels(t, lines("models:", "  m: {streaming: {onMalformed: ignore, maxContinuations: -1}}"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `models.m.streaming.onMalformed: unknown onMalformed "ignore" (allowed: skip, fail)`)
	assert.Contains(t, err.Error(), "models.m.streaming.maxContinuations")

	_, err = parseModels(t, lines("models:", "  x: {provider: exec, command: [echo, '{prompt}'], supportsPrefill: true}"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "models.x.supportsPrefill: only used by providers openai, anthropic and sim")
}
