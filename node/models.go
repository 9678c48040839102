package node

import (
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/anthropic"
	"github.com/cmmv-hive/resilience/providers/exec"
	"github.com/cmmv-hive/resilience/providers/openai"
	"github.com/cmmv-hive/resilience/providers/sim"
)

// hiveConfig turns the loaded configuration into the actors' configuration.
func hiveConfig(cfg *config.Config, node string, log zerolog.Logger) (actors.Config, error) {
	specs, err := modelSpecs(cfg, log)
	if err != nil {
		return actors.Config{}, err
	}
	g := &cfg.Global
	ratio, floor := g.BudgetConfig()
	return actors.Config{
		Node:           node,
		Models:         specs,
		RequestTimeout: cfg.Global.RequestTimeout,
		Logger:         log,
		Degradation:    cfg.Global.DegradationConfig(),
		Group:          cfg.Global.GroupConfig(),
		BudgetRatio:    ratio,
		BudgetMin:      floor,
		AllDown:        actors.AllDown{Wait: g.WhenAllDown.Wait, Reply: g.WhenAllDown.Reply},
		Supervision: actors.Supervision{MaxRestarts: g.Supervision.MaxRestarts, Within: g.Supervision.Within,
			BaseDelay: g.Supervision.BaseDelay, MaxDelay: g.Supervision.MaxDelay, Jitter: zeroIsOff(g.Supervision.Jitter)},
		Recovery: actors.Recovery{Disabled: !g.Recovery.Enabled, MaxConcurrent: g.Recovery.MaxConcurrent,
			ErrorRate: g.Recovery.ErrorRate, MinCalls: g.Recovery.MinCalls, ResponseTime: g.Recovery.ResponseTime,
			Failures: g.Recovery.Failures, Timeout: g.Recovery.Timeout, Cooldown: zeroIsOff(g.Recovery.Cooldown)},
		Alerts: g.Alerts,
		Peers:  actors.Peers{Off: !g.Cluster.ShareBreakers, WitnessWindow: g.Cluster.WitnessWindow, LeaseTTL: g.Cluster.LeaseTTL},
	}, nil
}

// identity names the upstream a model calls, so that nodes share breaker
// state only between models calling the same one: the provider, the
// endpoint and the upstream model for openai and anthropic, the command
// line for exec, and the model's name for sim (a simulated model stands
// for one upstream shared by every node that configures it).
func identity(m *config.Model) string {
	switch m.Provider {
	case config.ProviderOpenAI, config.ProviderAnthropic:
		return m.Provider + " " + m.Endpoint + " " + m.UpstreamModel
	case config.ProviderExec:
		return m.Provider + " " + strings.Join(m.Command, " ")
	}
	return m.Provider + " " + m.Name
}

// modelSpecs turns configured models into actor specs with their providers.
func modelSpecs(cfg *config.Config, log zerolog.Logger) ([]actors.ModelSpec, error) {
	specs := make([]actors.ModelSpec, 0, len(cfg.Order))
	for _, name := range cfg.Order {
		m := cfg.Models[name]
		if m.APIKeyEnv != "" && os.Getenv(m.APIKeyEnv) == "" {
			return nil, fmt.Errorf("%s:%d: models.%s.apiKeyEnv: environment variable %s is not set", m.File, m.Line, name, m.APIKeyEnv)
		}
		p, err := newProvider(m)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: models.%s: %w", m.File, m.Line, name, err)
		}
		if m.ProviderDefaulted {
			log.Warn().Str("model", name).Msg("no provider configured: serving it with the simulator (set provider: to call a real model)")
		}
		spec := actors.ModelSpec{
			Name:          name,
			Kind:          m.Provider,
			Identity:      identity(m),
			Provider:      p,
			NewProvider:   func() (providers.Provider, error) { return newProvider(m) },
			Timeout:       m.Timeout,
			MaxConcurrent: m.MaxConcurrent,
			QueueSize:     m.QueueSize,
			Fallbacks:     m.Fallbacks,
			Limits: actors.Limits{
				ContextWindow:    m.ContextWindow,
				MaxOutputTokens:  m.MaxOutputTokens,
				ContextFallbacks: m.ContextWindowFallbacks,
				PolicyFallbacks:  m.ContentPolicyFallbacks,
			},
			Strategy:     actors.Strategy(m.Strategy),
			Weight:       m.Weight,
			MaxParallel:  cfg.Global.MaxParallel,
			HedgeDelay:   cfg.Global.Hedging.Delay,
			Breaker:      m.BreakerConfig(),
			Retry:        m.RetryConfig(),
			Health:       m.HealthConfig(),
			Ramp:         m.RampConfig(),
			ProbeTimeout: m.HealthCheck.Timeout,
			Streaming: providers.StreamDeadlines{
				FirstToken: m.Streaming.FirstTokenTimeout,
				Idle:       m.Streaming.IdleTimeout,
				Total:      m.Streaming.TotalTimeout,
			},
			Prefill:          m.SupportsPrefill,
			FailOnMalformed:  m.Streaming.OnMalformed == config.MalformedFail,
			MaxContinuations: zeroIsOff(m.Streaming.MaxContinuations),
		}
		if m.HealthCheck.Enabled {
			spec.ProbeInterval = m.HealthCheck.Interval
			spec.OpenProbeInterval = m.HealthCheck.OpenInterval
			spec.RampProbeInterval = m.HealthCheck.RampInterval
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// newProvider builds a model's backend client. API keys are read from the
// environment here, at the last moment, and go nowhere else.
func newProvider(m *config.Model) (providers.Provider, error) {
	switch m.Provider {
	case config.ProviderSim:
		class, err := messages.ParseErrorClass(m.Sim.ErrorClass)
		if err != nil {
			return nil, err
		}
		return sim.New(sim.Config{
			Name:        m.Name,
			Latency:     m.Sim.Latency,
			Jitter:      m.Sim.Jitter,
			FailureRate: m.Sim.FailureRate,
			ErrorClass:  class,
			Seed:        uint64(m.Sim.Seed),
			Reply:       m.Sim.Reply,
			TokenDelay:  m.Sim.TokenDelay,

			RejectPrefill: m.Sim.RejectPrefill,
		})
	case config.ProviderOpenAI:
		return openai.New(openai.Config{Name: m.Name, BaseURL: m.Endpoint, APIKey: m.APIKey(), UpstreamModel: m.UpstreamModel})
	case config.ProviderAnthropic:
		return anthropic.New(anthropic.Config{Name: m.Name, BaseURL: m.Endpoint, APIKey: m.APIKey(), UpstreamModel: m.UpstreamModel})
	case config.ProviderExec:
		return exec.New(exec.Config{Name: m.Name, Command: m.Command, Timeout: m.Timeout})
	}
	return nil, fmt.Errorf("unknown provider %q", m.Provider)
}

// zeroIsOff passes a value the files allow to be 0 ("none") to the actors,
// which read 0 as "the default" and a negative value as "none".
func zeroIsOff[T ~int | ~int64 | ~float64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
