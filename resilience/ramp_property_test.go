package resilience

import (
	"slices"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
	"pgregory.net/rapid"
)

// rampConfigGen draws valid ramp configs around the defaults.
func rampConfigGen() *rapid.Generator[RampConfig] {
	return rapid.Custom(func(t *rapid.T) RampConfig {
		below := rapid.SliceOfNDistinct(rapid.IntRange(1, 99), 0, 6, rapid.ID[int]).Draw(t, "steps")
		slices.Sort(below)
		cfg := RampConfig{
			Steps:        append(below, 100),
			Over:         time.Duration(rapid.IntRange(0, 120).Draw(t, "overSeconds")) * time.Second,
			SuccessFloor: rapid.SampledFrom([]float64{0, 0.5, 0.8, 0.9, 0.95, 1}).Draw(t, "floor"),
			MinCalls:     rapid.IntRange(0, 20).Draw(t, "minCalls"),
		}
		if rapid.Bool().Draw(t, "evidence") {
			cfg.Successes = rapid.IntRange(1, 12).Draw(t, "successes")
		}
		switch rapid.IntRange(0, 2).Draw(t, "maxHoldKind") {
		case 1:
			cfg.MaxHold = -1
		case 2:
			cfg.MaxHold = time.Duration(rapid.IntRange(1, 4).Draw(t, "maxHoldHolds")) * cfg.withDefaults().hold()
		}
		return cfg
	})
}

// TestRampPercentProperty drives random ramps with random outcomes, ticks
// and clock steps, and checks that the share given to the model never
// decreases except by a regression, which ends the ramp, or (with
// Successes) by one step right after a counted failure; that it never
// leaves 1..100; that a step passes before its hold only on Successes
// successes in a row; and that every event matches the change it reports.
func TestRampPercentProperty(t *testing.T) {
	outcomes := []Outcome{
		{Class: messages.ErrorClass_ok},
		{Class: messages.ErrorClass_timeout},
		{Class: messages.ErrorClass_bad_request}, // not evidence
	}
	rapid.Check(t, func(t *rapid.T) {
		cfg := rampConfigGen().Draw(t, "cfg")
		r, err := NewRamp(cfg)
		if err != nil {
			t.Fatalf("NewRamp(%+v): %v", cfg, err)
		}
		d := cfg.withDefaults()
		now := rampT0
		start := r.Start(now)
		if start.To != d.Steps[0] || r.Percent() != d.Steps[0] && r.Ramping() {
			t.Fatalf("Start: event %+v, Percent %d; want the first step %d", start, r.Percent(), d.Steps[0])
		}
		share, ended := r.Percent(), !r.Ramping() // share: what the model gets; 0 after a regression
		streak := 0                               // successes in a row in the current step
		successWeight := rapid.IntRange(0, 20).Draw(t, "successWeight")
		for i := range rapid.IntRange(1, 300).Draw(t, "ops") {
			var ev RampEvent
			var ok bool
			failed := false
			switch op := rapid.IntRange(0, 3).Draw(t, "op"); op {
			case 0:
				now = now.Add(time.Duration(rapid.Int64Range(0, int64(10*time.Second)).Draw(t, "step")))
				continue
			case 1:
				ev, ok = r.Tick(now)
			default:
				o := outcomes[1]
				if rapid.IntRange(0, 20).Draw(t, "draw") < successWeight {
					o = outcomes[0]
				} else if rapid.IntRange(0, 9).Draw(t, "callerFault") == 0 {
					o = outcomes[2]
				}
				switch {
				case o.Success():
					streak++
				case o.Counts():
					streak, failed = 0, true
				}
				ev, ok = r.Observe(now, o)
			}
			if failed && d.Successes > 0 && !ended && share != d.Steps[0] &&
				(!ok || ev.Kind != RampDropped && ev.Kind != RampRegressed) {
				t.Fatalf("op %d: a failure at %d%% gave %+v (event %v), want a drop or a regression", i, share, ev, ok)
			}
			p := r.Percent()
			if p < 1 || p > 100 {
				t.Fatalf("op %d: Percent %d outside 1..100", i, p)
			}
			if !r.Ramping() && p != 100 {
				t.Fatalf("op %d: not ramping but Percent %d, want 100", i, p)
			}
			if !ok {
				if r.Ramping() == ended || (!ended && p != share) {
					t.Fatalf("op %d: no event but Ramping %v Percent %d, was ended %v share %d", i, r.Ramping(), p, ended, share)
				}
				continue
			}
			if ended {
				t.Fatalf("op %d: event %+v after the ramp ended", i, ev)
			}
			if ev.From != share || !ev.At.Equal(now) {
				t.Fatalf("op %d: event %+v, want From %d At %v", i, ev, share, now)
			}
			if (ev.Kind == RampAdvanced || ev.Kind == RampCompleted) && ev.Held < d.hold() {
				if d.Successes == 0 || !ev.OnEvidence || streak < d.Successes {
					t.Fatalf("op %d: %+v passed before its hold %v with a streak of %d (Successes %d)", i, ev, d.hold(), streak, d.Successes)
				}
			}
			switch ev.Kind {
			case RampDropped:
				prev := d.Steps[slices.Index(d.Steps, share)-1]
				if d.Successes == 0 || !failed || ev.To != prev || p != prev || !r.Ramping() {
					t.Fatalf("op %d: drop %+v, Percent %d, after a failure %v; want one step down to %d, still ramping, only with Successes", i, ev, p, failed, prev)
				}
			case RampAdvanced:
				next := d.Steps[slices.Index(d.Steps, share)+1]
				if ev.To != next || p != next || !r.Ramping() || next == 100 {
					t.Fatalf("op %d: advance %+v, Percent %d; want To = Percent = next step %d, still ramping", i, ev, p, next)
				}
			case RampCompleted:
				if ev.To != 100 || r.Ramping() {
					t.Fatalf("op %d: completion %+v, Ramping %v; want To 100, ended", i, ev, r.Ramping())
				}
				ended = true
			case RampRegressed:
				if ev.To != 0 || r.Ramping() {
					t.Fatalf("op %d: regression %+v, Ramping %v; want To 0, ended", i, ev, r.Ramping())
				}
				failures := ev.Calls - ev.Successes
				judged := ev.Calls >= d.MinCalls && rampRate(ev.Successes, ev.Calls) < d.SuccessFloor
				certain := ev.Calls < d.MinCalls && rampRate(d.MinCalls-failures, d.MinCalls) < d.SuccessFloor
				if !judged && !certain {
					t.Fatalf("op %d: regression %+v on evidence above the floor %v (MinCalls %d)", i, ev, d.SuccessFloor, d.MinCalls)
				}
				ended = true
			default:
				t.Fatalf("op %d: unexpected event %+v", i, ev)
			}
			if ev.To < share && ev.Kind != RampRegressed && ev.Kind != RampDropped {
				t.Fatalf("op %d: share fell %d -> %d without a regression or a drop", i, share, ev.To)
			}
			share, streak = ev.To, 0
		}
	})
}
