package main

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/actors"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers"
	"github.com/cmmv-hive/resilience/providers/sim"
)

// modelSpecs turns configured models into actor specs with their providers.
func modelSpecs(cfg *config.Config, log zerolog.Logger) ([]actors.ModelSpec, error) {
	specs := make([]actors.ModelSpec, 0, len(cfg.Order))
	for _, name := range cfg.Order {
		m := cfg.Models[name]
		p, err := newProvider(m)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: models.%s: %w", m.File, m.Line, name, err)
		}
		if m.Strategy != config.StrategySequential {
			log.Warn().Str("model", name).Str("strategy", m.Strategy).Msg("this strategy is not implemented yet: the fallbacks are tried sequentially")
		}
		if m.ProviderDefaulted {
			log.Warn().Str("model", name).Msg("no provider configured: serving it with the simulator (set provider: to call a real model)")
		}
		specs = append(specs, actors.ModelSpec{
			Name:          name,
			Kind:          m.Provider,
			Provider:      p,
			Timeout:       m.Timeout,
			MaxConcurrent: m.MaxConcurrent,
			QueueSize:     m.QueueSize,
			Fallbacks:     m.Fallbacks,
			Strategy:      actors.Strategy(m.Strategy),
		})
	}
	return specs, nil
}

func newProvider(m *config.Model) (providers.Provider, error) {
	switch m.Provider {
	case "sim":
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
		})
	}
	return nil, fmt.Errorf("provider %q is not available in this build yet; only sim is", m.Provider)
}
