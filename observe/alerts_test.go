package observe

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/messages"
)

// Validate gives zero fields their default and refuses what is out of
// range, naming the field.
func TestValidate(t *testing.T) {
	a := Alerts{Enabled: true, Rules: Rules{ModelUnavailable: Rule{Enabled: true}, LowSuccessRate: Rule{Enabled: true, Threshold: 0.8}}}
	require.NoError(t, a.Validate())
	assert.Equal(t, time.Second, a.Interval, "default interval")
	assert.Equal(t, 3.0, a.Rules.ModelUnavailable.Threshold, "default model_unavailable threshold")
	assert.Equal(t, 0.8, a.Rules.LowSuccessRate.Threshold, "a threshold given is kept")
	assert.Equal(t, 5*time.Minute, a.Rules.HighFailureRate.Window, "default window")
	assert.Equal(t, 20, a.Rules.SlowResponses.MinCalls, "default minimum calls")
	assert.Equal(t, 5.0, a.Rules.SlowResponses.Threshold, "default slow_responses threshold (seconds)")

	for name, bad := range map[string]Alerts{
		"Interval":      {Enabled: true, Interval: -1},
		"Threshold":     {Enabled: true, Rules: Rules{HighFailureRate: Rule{Threshold: -1}}},
		"Window":        {Enabled: true, Rules: Rules{SlowResponses: Rule{Window: -1}}},
		"MinCalls":      {Enabled: true, Rules: Rules{LowSuccessRate: Rule{MinCalls: -1}}},
		"Hysteresis":    {Enabled: true, Rules: Rules{LowSuccessRate: Rule{Hysteresis: -0.1}}},
		"Cooldown":      {Enabled: true, Rules: Rules{OpenBreakers: Rule{Cooldown: -1}}},
		"EscalateAfter": {Enabled: true, Rules: Rules{ModelUnavailable: Rule{EscalateAfter: -1}}},
	} {
		err := bad.Validate()
		if assert.Error(t, err, "%s out of range", name) {
			assert.Contains(t, err.Error(), name, "error names the field")
			assert.ErrorIs(t, err, ErrAlerts)
		}
	}
}

// The defaults are valid, every rule on, and a rule left at zero in code
// gets the threshold, window and minimum of calls the defaults give it.
func TestDefaults(t *testing.T) {
	d := Defaults()
	require.NoError(t, d.Validate())
	var zero Alerts
	zero.Enabled = true
	require.NoError(t, zero.Validate())
	defs := d.Rules.Named()
	for i, nr := range zero.Rules.Named() {
		def := defs[i].Rule
		assert.True(t, def.Enabled, "%s is on by default", nr.Name)
		assert.Equal(t, def.Threshold, nr.Rule.Threshold, "%s threshold", nr.Name)
		assert.Equal(t, def.Window, nr.Rule.Window, "%s window", nr.Name)
		assert.Equal(t, def.MinCalls, nr.Rule.MinCalls, "%s minimum of calls", nr.Name)
	}
	assert.Equal(t, messages.Alert_critical, d.Rules.OpenBreakers.Severity)
	assert.Equal(t, 5*time.Minute, d.Rules.ModelUnavailable.EscalateAfter, "model_unavailable escalates after 5 minutes")
}
