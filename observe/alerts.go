package observe

import (
	"errors"
	"fmt"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/resilience"
)

// ErrAlerts is matched by the error of Alerts.Validate, which names the
// rule and the field.
var ErrAlerts = errors.New("invalid alerts")

// The alert rule names: the last token of hive.v1.events.alert.<severity>.<rule>.
const (
	RuleModelUnavailable = "model_unavailable"
	RuleHighFailureRate  = "high_failure_rate"
	RuleLowSuccessRate   = "low_success_rate"
	RuleSlowResponses    = "slow_responses"
	RuleOpenBreakers     = "open_breakers"
	RuleSupervisorGaveUp = "supervisor_gave_up"
)

// Alerts configures alerting: resilience.yml's alerts: block. Each rule
// fires once when its condition holds, escalates once when it still holds
// after EscalateAfter, resolves once when the condition is gone by more
// than its hysteresis, and does not fire again within its cooldown. The
// zero value is off: no alerts actor, and the supervisor's give-ups are
// only RecoveryEvents.
type Alerts struct {
	Enabled  bool
	Interval time.Duration // between two evaluations; 1s
	Rules    Rules
	Webhooks []Webhook // where alerts go besides NATS; none
}

// Rules holds one Rule per rule. Threshold means, per rule:
// ModelUnavailable, consecutive failed calls of a model (default 3);
// HighFailureRate, a model's failure rate over Window (0.2); LowSuccessRate,
// the node's success rate over Window (the requests the router answered,
// failovers included), alerting below it (0.9); SlowResponses, a model's
// average latency of successful calls over Window, in seconds (5);
// OpenBreakers, breakers that refuse traffic at once on the node
// (BreakerState.Refuses: open, forced open by an operator, or half-open)
// (2).
// SupervisorGaveUp takes no threshold and no hysteresis: it fires when a
// model's supervisor stops restarting it and resolves when the model's
// actor answers again.
type Rules struct {
	ModelUnavailable Rule
	HighFailureRate  Rule
	LowSuccessRate   Rule
	SlowResponses    Rule
	OpenBreakers     Rule
	SupervisorGaveUp Rule
}

// Rule is one rule's settings; a rule whose Enabled is false is not
// evaluated.
type Rule struct {
	Enabled  bool
	Severity messages.Alert_Severity // of a firing; an escalation is critical
	// Threshold is what the value is compared with (see Rules); 0 means
	// the rule's default.
	Threshold float64
	Window    time.Duration // span of a rate or an average; 0 means 5m
	MinCalls  int           // calls (successes, for an average) in Window before a rate is judged; 0 means 20
	// Hysteresis is how far back past the threshold the value must go to
	// resolve; >= 0, as given.
	Hysteresis float64
	// Cooldown: no new firing of the same rule and model before this after
	// a resolve; >= 0, as given.
	Cooldown time.Duration
	// EscalateAfter escalates (once, severity critical) an alert still
	// firing and not acknowledged this long after it fired; 0 never.
	EscalateAfter time.Duration
}

// Named is a rule with its name and the side of its threshold that is bad.
type Named struct {
	Name      string
	Condition resilience.AlertCondition
	Rule      *Rule
}

// Named returns the rules in a fixed order, with what they are.
func (r *Rules) Named() []Named {
	return []Named{
		{RuleModelUnavailable, resilience.AlertAtLeast, &r.ModelUnavailable},
		{RuleHighFailureRate, resilience.AlertAbove, &r.HighFailureRate},
		{RuleLowSuccessRate, resilience.AlertBelow, &r.LowSuccessRate},
		{RuleSlowResponses, resilience.AlertAbove, &r.SlowResponses},
		{RuleOpenBreakers, resilience.AlertAtLeast, &r.OpenBreakers},
		{RuleSupervisorGaveUp, resilience.AlertAbove, &r.SupervisorGaveUp},
	}
}

// The proposal's alert settings (docs/policy.md, "The proposal's
// defaults").
const (
	defaultInterval = time.Second
	defaultWindow   = 5 * time.Minute
	defaultMinCalls = 20
	defaultCooldown = 5 * time.Minute
	rateHysteresis  = 0.05
)

// Defaults returns the alerts a node runs when resilience.yml says nothing:
// every rule on; model_unavailable a warning after 3 failed calls in a
// row, critical after 5 minutes; high_failure_rate a warning above 20 %;
// low_success_rate critical below 0.9; slow_responses a warning above 5 s;
// open_breakers critical at 2; supervisor_gave_up critical; rates over 5
// minutes of at least 20 calls with a hysteresis of 0.05; 5 minutes of
// cooldown; evaluated every second; no webhooks.
func Defaults() Alerts {
	rate := func(sev messages.Alert_Severity, threshold float64) Rule {
		return Rule{Enabled: true, Severity: sev, Threshold: threshold, Window: defaultWindow, MinCalls: defaultMinCalls,
			Hysteresis: rateHysteresis, Cooldown: defaultCooldown}
	}
	plain := func(sev messages.Alert_Severity, threshold float64) Rule {
		return Rule{Enabled: true, Severity: sev, Threshold: threshold, Window: defaultWindow, MinCalls: defaultMinCalls,
			Cooldown: defaultCooldown}
	}
	unavailable := plain(messages.Alert_warning, 3)
	unavailable.EscalateAfter = 5 * time.Minute
	return Alerts{
		Enabled:  true,
		Interval: defaultInterval,
		Rules: Rules{
			ModelUnavailable: unavailable,
			HighFailureRate:  rate(messages.Alert_warning, 0.2),
			LowSuccessRate:   rate(messages.Alert_critical, 0.9),
			SlowResponses:    plain(messages.Alert_warning, 5),
			OpenBreakers:     plain(messages.Alert_critical, 2),
			SupervisorGaveUp: plain(messages.Alert_critical, 0),
		},
	}
}

// Validate gives the zero fields that mean a default their value (the
// interval, each rule's threshold, window and minimum of calls, from
// Defaults) and reports the first setting out of range, naming the rule
// and the field. Alerts that are off are not checked.
func (a *Alerts) Validate() error {
	if !a.Enabled {
		return nil
	}
	if a.Interval < 0 {
		return fmt.Errorf("%w: Interval %v < 0", ErrAlerts, a.Interval)
	}
	if a.Interval == 0 {
		a.Interval = defaultInterval
	}
	def := Defaults()
	defs := def.Rules.Named()
	for i, nr := range a.Rules.Named() {
		r, d := nr.Rule, defs[i].Rule
		switch {
		case r.Threshold < 0:
			return fmt.Errorf("%w: %s: Threshold %v < 0", ErrAlerts, nr.Name, r.Threshold)
		case r.Window < 0:
			return fmt.Errorf("%w: %s: Window %v < 0", ErrAlerts, nr.Name, r.Window)
		case r.MinCalls < 0:
			return fmt.Errorf("%w: %s: MinCalls %d < 0", ErrAlerts, nr.Name, r.MinCalls)
		}
		if r.Threshold == 0 {
			r.Threshold = d.Threshold
		}
		if r.Window == 0 {
			r.Window = d.Window
		}
		if r.MinCalls == 0 {
			r.MinCalls = d.MinCalls
		}
		if err := r.Machine(nr, 0).Validate(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrAlerts, nr.Name, err)
		}
	}
	return nil
}

// Machine is the state machine settings of the rule nr. maxRestarts is
// the supervisor's limit, the threshold of supervisor_gave_up.
func (r *Rule) Machine(nr Named, maxRestarts int) resilience.AlertConfig {
	c := resilience.AlertConfig{Condition: nr.Condition, Threshold: r.Threshold, Hysteresis: r.Hysteresis,
		Cooldown: r.Cooldown, EscalateAfter: r.EscalateAfter}
	if nr.Name == RuleSupervisorGaveUp {
		// A state, not a measure: crashes > MaxRestarts while given up, 0
		// once the model runs again.
		c.Threshold, c.Hysteresis = float64(maxRestarts), 0
	}
	return c
}
