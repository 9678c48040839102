package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/resilience"
)

// TestREADME keeps the Configuration section of the README exact: a row for
// every key, and the presets' values as resilience has them.
func TestREADME(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(data)
	start := strings.Index(section, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README.md: got no \"## Configuration\" section")
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}

	d := newDecoder(GlobalFile)
	var rows []string
	blocks := globalBlocks(d)
	for key := range d.globalFields(&Global{}) {
		if blocks[key] == nil {
			rows = append(rows, key)
		}
		for sub := range blocks[key] {
			rows = append(rows, key+"."+sub)
		}
	}
	for key := range d.modelFields(&Model{}, &flatKeys{}) {
		switch key {
		case "circuitBreaker", "retry", "healthCheck", "streaming", "restoration":
			if !strings.Contains(section, "`"+key+"`") {
				t.Errorf("README.md: got no mention of the model block %s", key)
			}
		case "sim":
			for sub := range d.simFields(&Sim{}) {
				rows = append(rows, "sim."+sub)
			}
		default:
			rows = append(rows, key)
		}
	}
	var rules AlertRules
	for _, nr := range rules.Named() {
		if !strings.Contains(section, "| `"+nr.Name+"` |") {
			t.Errorf("README.md: got no row for the alert rule %s, want one in the rules table", nr.Name)
		}
	}
	for _, key := range rows {
		if rest, ok := strings.CutPrefix(key, "alerts.rules."); ok { // one row per key, for every rule
			_, sub, _ := strings.Cut(rest, ".")
			key = "alerts.rules.<rule>." + sub
		}
		if !strings.Contains(section, "| `"+key+"` |") {
			t.Errorf("README.md: got no row for %s, want every key in a table", key)
		}
	}
	if table := presetTable(); !strings.Contains(section, table) {
		t.Errorf("README.md: got no preset table as resilience has it, want\n%s", table)
	}
}

// globalBlocks returns the fields of each block of resilience.yml.
func globalBlocks(d *decoder) map[string]map[string]field {
	return map[string]map[string]field{
		"circuitBreaker":  d.breakerFields(&Breaker{}),
		"retry":           d.retryFields(&Retry{}),
		"healthCheck":     d.healthFields(&HealthCheck{}),
		"streaming":       d.streamingFields(&Streaming{}),
		"restoration":     d.restorationFields(&Restoration{}),
		"degradation":     d.degradationFields(&Degradation{}),
		"groupProtection": d.groupFields(&GroupProtection{}),
		"retryBudget":     d.budgetFields(&RetryBudget{}),
		"hedging":         d.hedgingFields(&Hedging{}),
		"whenAllDown":     d.allDownFields(&WhenAllDown{}),
		"supervision":     d.supervisionFields(&Supervision{}),
		"recovery":        d.recoveryFields(&Recovery{}),
		"alerts":          alertsKeys(d),
		"persistence":     d.persistenceFields(&Persistence{}),
		"chaos":           d.chaosFields(&Chaos{}),
		"jobs":            d.jobsFields(&Jobs{}),
		"events":          d.eventsFields(&Events{}),
		"cluster":         d.clusterFields(&Cluster{}),
	}
}

// alertsKeys returns the alerts block's keys with each rule's and a
// webhook's keys spelled out ("rules.model_unavailable.threshold",
// "webhooks[].url"), as the README and resilience.yml write them.
func alertsKeys(d *decoder) map[string]field {
	fs := d.alertsFields(&Alerts{})
	delete(fs, "rules")
	delete(fs, "webhooks")
	var rules AlertRules
	for _, nr := range rules.Named() {
		for key, f := range d.alertRuleFields(nr.Name, nr.Rule) {
			fs["rules."+nr.Name+"."+key] = f
		}
	}
	for key, f := range d.webhookFields(&Webhook{}) {
		fs["webhooks[]."+key] = f
	}
	return fs
}

// presetTable writes the value of every breaker key in each preset as a
// Markdown table: "off" for a threshold a preset leaves off, "-" for a
// window key its window does not use.
func presetTable() string {
	names := []string{PresetBIP03, PresetGobreaker, PresetResilience4j, PresetHystrix, PresetEnvoy}
	cs := make([]resilience.BreakerConfig, len(names))
	for i, n := range names {
		cs[i], _ = resilience.Preset(n)
	}
	orOff := func(v any, zero bool) string {
		if zero {
			return "off"
		}
		return fmt.Sprint(v)
	}
	orDash := func(v any, zero bool) string {
		if zero {
			return "-"
		}
		return fmt.Sprint(v)
	}
	dur := func(x time.Duration) string { return shortDuration(x) }
	growth := map[resilience.OpenGrowth]string{resilience.GrowExponential: "exponential", resilience.GrowLinear: "linear"}
	rows := []struct {
		key   string
		value func(c resilience.BreakerConfig) string
	}{
		{"failureThreshold", func(c resilience.BreakerConfig) string {
			return orOff(c.ConsecutiveFailures, c.ConsecutiveFailures == 0)
		}},
		{"failureRate", func(c resilience.BreakerConfig) string { return orOff(c.FailureRate, c.FailureRate == 0) }},
		{"slowRate", func(c resilience.BreakerConfig) string { return orOff(c.SlowRate, c.SlowRate == 0) }},
		{"slowCall", func(c resilience.BreakerConfig) string { return orOff(dur(c.SlowCall), c.SlowCall == 0) }},
		{"minimumCalls", func(c resilience.BreakerConfig) string { return orOff(c.MinimumCalls, c.MinimumCalls == 0) }},
		{"window", func(c resilience.BreakerConfig) string { return c.Window.String() }},
		{"windowSize", func(c resilience.BreakerConfig) string { return orDash(c.WindowSize, c.WindowSize == 0) }},
		{"windowDuration", func(c resilience.BreakerConfig) string { return orDash(dur(c.WindowDuration), c.WindowDuration == 0) }},
		{"windowBuckets", func(c resilience.BreakerConfig) string { return orDash(c.WindowBuckets, c.WindowBuckets == 0) }},
		{"openDuration", func(c resilience.BreakerConfig) string { return dur(c.OpenDuration) }},
		{"maxOpenDuration", func(c resilience.BreakerConfig) string { return dur(c.MaxOpenDuration) }},
		{"growth", func(c resilience.BreakerConfig) string { return growth[c.Growth] }},
		{"multiplier", func(c resilience.BreakerConfig) string { return fmt.Sprint(c.Multiplier) }},
		{"openJitter", func(c resilience.BreakerConfig) string { return orOff(c.OpenJitter, c.OpenJitter == 0) }},
		{"tripReset", func(c resilience.BreakerConfig) string { return dur(c.TripReset) }},
		{"authOpen", func(c resilience.BreakerConfig) string { return dur(c.AuthOpen) }},
		{"halfOpenPermits", func(c resilience.BreakerConfig) string { return fmt.Sprint(c.HalfOpenPermits) }},
		{"successThreshold", func(c resilience.BreakerConfig) string { return fmt.Sprint(c.SuccessThreshold) }},
		{"permitLease", func(c resilience.BreakerConfig) string { return dur(c.PermitLease) }},
	}
	var b strings.Builder
	b.WriteString("| key | `" + strings.Join(names, "` | `") + "` |\n")
	b.WriteString("| --- |" + strings.Repeat(" --- |", len(names)) + "\n")
	for _, r := range rows {
		b.WriteString("| `" + r.key + "` |")
		for _, c := range cs {
			b.WriteString(" " + r.value(c) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
