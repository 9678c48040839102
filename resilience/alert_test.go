package resilience

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var alertT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// alertStep is one scripted input at a time from alertT0: a value, a tick
// (no verdict) or an acknowledgement.
type alertStep struct {
	at   time.Duration
	kind byte // 'v' value, 't' tick, 'a' acknowledge
	v    float64
}

func alertVal(at time.Duration, v float64) alertStep { return alertStep{at: at, kind: 'v', v: v} }
func alertTick(at time.Duration) alertStep           { return alertStep{at: at, kind: 't'} }
func alertAck(at time.Duration) alertStep            { return alertStep{at: at, kind: 'a'} }

// alertRun feeds script to a fresh alert and returns its transitions as
// "at transition" items joined by "; ".
func alertRun(t *testing.T, cfg AlertConfig, script []alertStep) string {
	t.Helper()
	a, err := NewAlert(cfg)
	if err != nil {
		t.Fatalf("NewAlert(%+v): %v", cfg, err)
	}
	var got []string
	for _, s := range script {
		now := alertT0.Add(s.at)
		var tr AlertTransition
		switch s.kind {
		case 'v':
			tr = a.Observe(now, s.v)
		case 't':
			tr = a.Tick(now)
		case 'a':
			if !a.Acknowledge() {
				got = append(got, fmt.Sprintf("%v ack-refused", s.at))
			}
			continue
		}
		if tr != AlertUnchanged {
			got = append(got, fmt.Sprintf("%v %v", s.at, tr))
		}
	}
	return strings.Join(got, "; ")
}

// flap alternates bad and good values every step from start, n times.
func alertFlap(start, step time.Duration, n int, bad, good float64) []alertStep {
	var s []alertStep
	for i := range n {
		v := bad
		if i%2 == 1 {
			v = good
		}
		s = append(s, alertVal(start+time.Duration(i)*step, v))
	}
	return s
}

func alertConcat(parts ...[]alertStep) []alertStep {
	var all []alertStep
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestAlertTransitions(t *testing.T) {
	count := AlertConfig{Condition: AlertAtLeast, Threshold: 3, Cooldown: 5 * time.Minute, EscalateAfter: 5 * time.Minute}
	rate := AlertConfig{Condition: AlertAbove, Threshold: 0.2, Hysteresis: 0.05, Cooldown: 5 * time.Minute}
	success := AlertConfig{Condition: AlertBelow, Threshold: 0.9, Hysteresis: 0.05, Cooldown: 5 * time.Minute}
	s := time.Second
	cases := []struct {
		name   string
		cfg    AlertConfig
		script []alertStep
		want   string
	}{
		{"count fires once at the threshold", count,
			[]alertStep{alertVal(1*s, 1), alertVal(2*s, 2), alertVal(3*s, 3), alertVal(4*s, 4), alertVal(5*s, 3)},
			"3s fired"},
		{"count resolves once under the threshold", count,
			[]alertStep{alertVal(1*s, 3), alertVal(2*s, 5), alertVal(3*s, 2), alertVal(4*s, 0), alertVal(5*s, 1)},
			"1s fired; 3s resolved"},
		{"rate above: equal to the threshold does not fire", rate,
			[]alertStep{alertVal(1*s, 0.2), alertVal(2*s, 0.21)},
			"2s fired"},
		{"rate resolves only past the hysteresis", rate,
			[]alertStep{alertVal(1*s, 0.25), alertVal(2*s, 0.18), alertVal(3*s, 0.21), alertVal(4*s, 0.15), alertVal(5*s, 0.149)},
			"1s fired; 5s resolved"},
		{"success rate below fires and resolves above threshold + hysteresis", success,
			[]alertStep{alertVal(1*s, 0.95), alertVal(2*s, 0.85), alertVal(3*s, 0.93), alertVal(4*s, 0.95), alertVal(5*s, 0.951)},
			"2s fired; 5s resolved"},
		{"a value flapping around the threshold fires once and resolves once", rate,
			alertFlap(s, 10*s, 30, 0.3, 0.1),
			"1s fired; 11s resolved"},
		{"a count flapping within the cooldown fires once and resolves once", count,
			alertFlap(s, s, 200, 3, 0),
			"1s fired; 2s resolved"},
		{"no firing within the cooldown, then a firing if the condition holds", rate,
			alertConcat([]alertStep{alertVal(0, 0.3), alertVal(time.Minute, 0.1)},
				[]alertStep{alertVal(2*time.Minute, 0.3), alertVal(6*time.Minute-s, 0.3), alertVal(6*time.Minute, 0.3)}),
			"0s fired; 1m0s resolved; 6m0s fired"},
		{"a condition gone before the cooldown ends does not fire", rate,
			[]alertStep{alertVal(0, 0.3), alertVal(time.Minute, 0.1), alertVal(2*time.Minute, 0.3), alertVal(7*time.Minute, 0.1)},
			"0s fired; 1m0s resolved"},
		{"escalates once, EscalateAfter after firing", count,
			[]alertStep{alertVal(0, 3), alertTick(4 * time.Minute), alertTick(5 * time.Minute), alertTick(6 * time.Minute), alertVal(7*time.Minute, 4), alertVal(8*time.Minute, 0)},
			"0s fired; 5m0s escalated; 8m0s resolved"},
		{"a value still bad escalates too", count,
			[]alertStep{alertVal(0, 3), alertVal(5*time.Minute-s, 3), alertVal(5*time.Minute, 3), alertVal(6*time.Minute, 3)},
			"0s fired; 5m0s escalated"},
		{"an acknowledged alert does not escalate and still resolves", count,
			[]alertStep{alertVal(0, 3), alertAck(time.Minute), alertTick(10 * time.Minute), alertVal(11*time.Minute, 0)},
			"0s fired; 11m0s resolved"},
		{"acknowledging a quiet alert is refused", count,
			[]alertStep{alertAck(0), alertVal(s, 3), alertVal(2*s, 0), alertAck(3 * s)},
			"0s ack-refused; 1s fired; 2s resolved; 3s ack-refused"},
		{"a new firing after a resolve escalates again", AlertConfig{Condition: AlertAtLeast, Threshold: 1, EscalateAfter: time.Minute},
			[]alertStep{alertVal(0, 1), alertTick(time.Minute), alertVal(2*time.Minute, 0), alertVal(3*time.Minute, 1), alertTick(4 * time.Minute)},
			"0s fired; 1m0s escalated; 2m0s resolved; 3m0s fired; 4m0s escalated"},
		{"EscalateAfter 0 never escalates", rate,
			[]alertStep{alertVal(0, 0.5), alertTick(24 * time.Hour)},
			"0s fired"},
		{"resolving wins over an escalation due at the same time", count,
			[]alertStep{alertVal(0, 3), alertVal(5*time.Minute, 0)},
			"0s fired; 5m0s resolved"},
		{"ticks and NaN are no verdict", rate,
			[]alertStep{alertTick(0), alertVal(s, math.NaN()), alertVal(2*s, 0.3), alertVal(3*s, math.NaN()), alertTick(4 * s)},
			"2s fired"},
		{"zero cooldown fires again at once", AlertConfig{Condition: AlertAtLeast, Threshold: 1},
			[]alertStep{alertVal(0, 1), alertVal(s, 0), alertVal(s, 1)},
			"0s fired; 1s resolved; 1s fired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := alertRun(t, c.cfg, c.script); got != c.want {
				t.Errorf("transitions:\n got  %q\n want %q", got, c.want)
			}
		})
	}
}

func TestAlertAccessors(t *testing.T) {
	a, err := NewAlert(AlertConfig{Condition: AlertAtLeast, Threshold: 1, EscalateAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	a.Observe(alertT0, 1)
	if !a.Firing() || a.Escalated() || a.Acknowledged() || a.Firings() != 1 || !a.FiredAt().Equal(alertT0) {
		t.Errorf("after firing: firing %v escalated %v acked %v firings %d firedAt %v, want true false false 1 %v",
			a.Firing(), a.Escalated(), a.Acknowledged(), a.Firings(), a.FiredAt(), alertT0)
	}
	a.Tick(alertT0.Add(time.Minute))
	a.Acknowledge()
	if !a.Escalated() || !a.Acknowledged() {
		t.Errorf("after escalation and ack: escalated %v acked %v, want true true", a.Escalated(), a.Acknowledged())
	}
	a.Observe(alertT0.Add(2*time.Minute), 0)
	if a.Firing() || a.Escalated() || a.Acknowledged() || a.Firings() != 1 {
		t.Errorf("after resolve: firing %v escalated %v acked %v firings %d, want false false false 1",
			a.Firing(), a.Escalated(), a.Acknowledged(), a.Firings())
	}
}

func TestAlertConfigValidate(t *testing.T) {
	cases := []struct {
		name  string
		cfg   AlertConfig
		field string // "" for valid
	}{
		{"zero", AlertConfig{}, ""},
		{"full", AlertConfig{Condition: AlertBelow, Threshold: 0.9, Hysteresis: 0.05, Cooldown: time.Minute, EscalateAfter: time.Minute}, ""},
		{"unknown condition", AlertConfig{Condition: 9}, "Condition"},
		{"NaN threshold", AlertConfig{Threshold: math.NaN()}, "Threshold"},
		{"infinite threshold", AlertConfig{Threshold: math.Inf(1)}, "Threshold"},
		{"negative hysteresis", AlertConfig{Hysteresis: -0.1}, "Hysteresis"},
		{"NaN hysteresis", AlertConfig{Hysteresis: math.NaN()}, "Hysteresis"},
		{"negative cooldown", AlertConfig{Cooldown: -1}, "Cooldown"},
		{"negative escalation", AlertConfig{EscalateAfter: -1}, "EscalateAfter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewAlert(c.cfg)
			switch {
			case c.field == "" && err != nil:
				t.Errorf("NewAlert: %v, want no error", err)
			case c.field != "" && (!errors.Is(err, ErrAlertConfig) || !strings.Contains(err.Error(), c.field)):
				t.Errorf("NewAlert: %v, want ErrAlertConfig naming %s", err, c.field)
			}
		})
	}
}

func TestAlertWindow(t *testing.T) {
	at := func(d time.Duration) time.Time { return alertT0.Add(d) }
	fail := AlertSample{Calls: 1, Failures: 1}
	ok := AlertSample{Calls: 1, Latency: 2 * time.Second}

	w := NewAlertWindow(30 * time.Second) // 1 s buckets
	w.Add(at(0), fail)
	w.Add(at(10*time.Second), ok)
	w.Add(at(10*time.Second), ok)
	w.Add(at(20*time.Second), AlertSample{Calls: 1, Latency: 5 * time.Second})
	s := w.Sum(at(29 * time.Second))
	if s.Calls != 4 || s.Failures != 1 || s.Latency != 9*time.Second {
		t.Fatalf("sum at 29s: %+v, want 4 calls, 1 failure, 9s latency", s)
	}
	if got := s.FailureRate(); got != 0.25 {
		t.Errorf("failure rate: %v, want 0.25", got)
	}
	if got := s.LatencyAvg(); got != 3*time.Second {
		t.Errorf("latency average: %v, want 3s (of the 3 successes)", got)
	}
	if s := w.Sum(at(30 * time.Second)); s.Calls != 3 || s.Failures != 0 {
		t.Errorf("sum at 30s: %+v, want the failure at 0s expired (3 calls, 0 failures)", s)
	}
	if s := w.Sum(at(40 * time.Second)); s.Calls != 1 || s.Latency != 5*time.Second {
		t.Errorf("sum at 40s: %+v, want only the call at 20s", s)
	}
	w.Add(at(35*time.Second), fail) // the clock went back: counted in the newest bucket
	if s := w.Sum(at(40 * time.Second)); s.Calls != 2 || s.Failures != 1 {
		t.Errorf("sum after a backward clock: %+v, want 2 calls, 1 failure", s)
	}
	if s := w.Sum(at(time.Hour)); s != (AlertSample{}) {
		t.Errorf("sum an hour later: %+v, want empty", s)
	}
	w.Add(at(time.Hour), ok)
	if s := w.Sum(at(time.Hour)); s.Calls != 1 {
		t.Errorf("sum after a long gap: %+v, want the new call only", s)
	}

	var empty AlertSample
	if empty.FailureRate() != 0 || empty.LatencyAvg() != 0 {
		t.Errorf("empty sample: rate %v avg %v, want 0 0", empty.FailureRate(), empty.LatencyAvg())
	}
	tiny := NewAlertWindow(1)
	tiny.Add(at(0), fail)
	if s := tiny.Sum(at(time.Microsecond)); s.Calls != 0 {
		t.Errorf("1 ns window a microsecond later: %+v, want empty", s)
	}
}
