package config

import "strings"

// Limits are the context window and the maximum output of an upstream
// model, in tokens; 0 is unknown.
type Limits struct {
	ContextWindow   int
	MaxOutputTokens int
}

// GeminiOpenAIEndpoint is Google's OpenAI-compatible endpoint for Gemini
// models (provider openai).
const GeminiOpenAIEndpoint = "https://generativelanguage.googleapis.com/v1beta/openai"

// knownLimits holds the documented limits of well-known upstream models,
// by the provider's own endpoint, then by upstream model name. The table
// and its sources are docs/context-windows.md ("Known limits"), which a
// test keeps equal to this one. Only the provider's own API is listed:
// the same name behind another server (a proxy, a cloud's deployment, a
// local runtime) may have other limits, so it stays unknown.
var knownLimits = map[string]map[string]Limits{
	DefaultOpenAIEndpoint: {
		"gpt-5":         {400_000, 128_000},
		"gpt-5-mini":    {400_000, 128_000},
		"gpt-5-nano":    {400_000, 128_000},
		"gpt-4.1":       {1_047_576, 32_768},
		"gpt-4.1-mini":  {1_047_576, 32_768},
		"gpt-4.1-nano":  {1_047_576, 32_768},
		"gpt-4o":        {128_000, 16_384},
		"gpt-4o-mini":   {128_000, 16_384},
		"o3":            {200_000, 100_000},
		"o4-mini":       {200_000, 100_000},
		"gpt-4-turbo":   {128_000, 4_096},
		"gpt-3.5-turbo": {16_385, 4_096},
	},
	DefaultAnthropicEndpoint: {
		"claude-opus-4-1-20250805":   {200_000, 32_000},
		"claude-opus-4-1":            {200_000, 32_000},
		"claude-opus-4-20250514":     {200_000, 32_000},
		"claude-opus-4-0":            {200_000, 32_000},
		"claude-sonnet-4-5-20250929": {200_000, 64_000},
		"claude-sonnet-4-5":          {200_000, 64_000},
		"claude-sonnet-4-20250514":   {200_000, 64_000},
		"claude-sonnet-4-0":          {200_000, 64_000},
		"claude-haiku-4-5-20251001":  {200_000, 64_000},
		"claude-haiku-4-5":           {200_000, 64_000},
		"claude-3-7-sonnet-20250219": {200_000, 64_000},
		"claude-3-5-haiku-20241022":  {200_000, 8_192},
	},
	GeminiOpenAIEndpoint: {
		"gemini-2.5-pro":   {1_048_576, 65_536},
		"gemini-2.5-flash": {1_048_576, 65_536},
		"gemini-2.0-flash": {1_048_576, 8_192},
	},
}

// KnownLimits returns the documented limits of upstream model at endpoint
// (a trailing "/" aside), and false when the table does not list them.
func KnownLimits(endpoint, upstream string) (Limits, bool) {
	l, ok := knownLimits[strings.TrimSuffix(endpoint, "/")][upstream]
	return l, ok
}

// applyLimits gives m the known limits of its upstream model for each of
// contextWindow and maxOutputTokens that the file does not give; a value
// the file gives, 0 (unknown) included, stays.
func (d *decoder) applyLimits(m *Model, path string) {
	if m.Provider != ProviderOpenAI && m.Provider != ProviderAnthropic {
		return
	}
	known, ok := KnownLimits(m.Endpoint, m.UpstreamModel)
	if !ok {
		return
	}
	if _, given := d.seen[path+".contextWindow"]; !given {
		m.ContextWindow = known.ContextWindow
	}
	if _, given := d.seen[path+".maxOutputTokens"]; !given {
		m.MaxOutputTokens = known.MaxOutputTokens
	}
}
