package actors

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/providers"
)

// Strategy names a fallback strategy. Only Sequential is served so far; the
// others are accepted by configuration and run as Sequential until the
// router implements them.
type Strategy string

// Fallback strategies.
const (
	Sequential Strategy = "sequential"
	Parallel   Strategy = "parallel"
	Hedged     Strategy = "hedged"
	Weighted   Strategy = "weighted"
	Random     Strategy = "random"
)

// ModelSpec describes one model actor.
type ModelSpec struct {
	Name          string
	Kind          string // provider kind, for status and logs
	Provider      providers.Provider
	Timeout       time.Duration // one attempt's deadline; 30s when zero
	MaxConcurrent int           // calls at once; 10 when zero
	QueueSize     int           // calls waiting for a slot; overflow is no_capacity
	Fallbacks     []string      // tried in order after the model itself
	Strategy      Strategy
}

// Config configures a Hive.
type Config struct {
	Node           string
	Models         []ModelSpec
	RequestTimeout time.Duration    // a request's total deadline when it gives none; 60s when zero
	Logger         zerolog.Logger   // should carry the node key; actors add model
	Now            func() time.Time // time.Now when nil
}

func (c *Config) validate() error {
	if c.Node == "" {
		return fmt.Errorf("node name is empty")
	}
	if len(c.Models) == 0 {
		return fmt.Errorf("no models configured")
	}
	known := make(map[string]bool, len(c.Models))
	for i := range c.Models {
		m := &c.Models[i]
		if m.Name == "" || m.Provider == nil {
			return fmt.Errorf("model %d: name and provider are required", i)
		}
		if known[m.Name] {
			return fmt.Errorf("model %q configured twice", m.Name)
		}
		known[m.Name] = true
		if m.Timeout <= 0 {
			m.Timeout = 30 * time.Second
		}
		if m.MaxConcurrent <= 0 {
			m.MaxConcurrent = 10
		}
		if m.QueueSize < 0 {
			return fmt.Errorf("model %q: queue size %d is negative", m.Name, m.QueueSize)
		}
		if m.Strategy == "" {
			m.Strategy = Sequential
		}
	}
	for _, m := range c.Models {
		for _, f := range m.Fallbacks {
			if !known[f] || f == m.Name {
				return fmt.Errorf("model %q: fallback %q is not another configured model", m.Name, f)
			}
		}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
