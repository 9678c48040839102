package resilience

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cmmv-hive/resilience/messages"
)

var (
	rampT0   = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rampOK   = Outcome{Class: messages.ErrorClass_ok}
	rampFail = Outcome{Class: messages.ErrorClass_server_error}
)

// rampAt is the fake clock: rampT0 plus d.
func rampAt(d time.Duration) time.Time { return rampT0.Add(d) }

func newTestRamp(t testing.TB, cfg RampConfig) *Ramp {
	t.Helper()
	r, err := NewRamp(cfg)
	if err != nil {
		t.Fatalf("NewRamp(%+v): %v", cfg, err)
	}
	return r
}

// rampScript is one scripted input: an outcome (or a tick when tick is set)
// at a time from rampT0.
type rampScript struct {
	at   time.Duration
	tick bool
	o    Outcome
}

// rampRun feeds the script to r and returns every event, Start's included.
func rampRun(r *Ramp, script []rampScript) []RampEvent {
	evs := []RampEvent{r.Start(rampT0)}
	for _, s := range script {
		var ev RampEvent
		var ok bool
		if s.tick {
			ev, ok = r.Tick(rampAt(s.at))
		} else {
			ev, ok = r.Observe(rampAt(s.at), s.o)
		}
		if ok {
			evs = append(evs, ev)
		}
	}
	return evs
}

// rampSteady returns n outcomes o spread evenly over (from, to], each
// followed by a tick at the same time, as an owner driven by a timer would.
func rampSteady(from, to time.Duration, n int, o Outcome) []rampScript {
	var s []rampScript
	for i := 1; i <= n; i++ {
		at := from + (to-from)*time.Duration(i)/time.Duration(n)
		s = append(s, rampScript{at: at, o: o}, rampScript{at: at, tick: true})
	}
	return s
}

func rampConcat(parts ...[]rampScript) []rampScript {
	var all []rampScript
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func rampCheckEvents(t *testing.T, got, want []RampEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d events, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("event %d: missing, want %+v", i, want[i])
		case i >= len(want):
			t.Errorf("event %d: got extra %+v", i, got[i])
		case got[i] != want[i]:
			t.Errorf("event %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func TestRampWalksStepsWithHealthyTraffic(t *testing.T) {
	r := newTestRamp(t, RampConfig{})
	// One success every 100 ms for 40 s, a tick after each.
	evs := rampRun(r, rampSteady(0, 40*time.Second, 400, rampOK))
	rampCheckEvents(t, evs, []RampEvent{
		{Kind: RampStarted, At: rampT0, To: 10},
		{Kind: RampAdvanced, At: rampAt(10 * time.Second), From: 10, To: 25, Calls: 100, Successes: 100, Held: 10 * time.Second},
		{Kind: RampAdvanced, At: rampAt(20 * time.Second), From: 25, To: 50, Calls: 100, Successes: 100, Held: 10 * time.Second},
		{Kind: RampCompleted, At: rampAt(30 * time.Second), From: 50, To: 100, Calls: 100, Successes: 100, Held: 10 * time.Second},
	})
	if r.Ramping() || r.Percent() != 100 {
		t.Errorf("after the ramp: Ramping %v, Percent %d; want false, 100", r.Ramping(), r.Percent())
	}
}

func TestRampPercentOverTime(t *testing.T) {
	r := newTestRamp(t, RampConfig{})
	if got := r.Percent(); got != 100 {
		t.Errorf("before Start: Percent = %d, want 100", got)
	}
	r.Start(rampT0)
	tests := []struct {
		at   time.Duration
		want int
	}{
		{0, 10},
		{9999 * time.Millisecond, 10},
		{10 * time.Second, 25},
		{19999 * time.Millisecond, 25},
		{20 * time.Second, 50},
		{29999 * time.Millisecond, 50},
		{30 * time.Second, 100},
		{time.Hour, 100},
	}
	// 20 successes per step, well before its end, so each step is judged.
	for _, tt := range tests {
		if r.Ramping() && r.Percent() != 100 {
			for range 20 {
				r.Observe(rampAt(tt.at), rampOK)
			}
		}
		r.Tick(rampAt(tt.at))
		if got := r.Percent(); got != tt.want {
			t.Errorf("at %v: Percent = %d, want %d", tt.at, got, tt.want)
		}
	}
}

func TestRampThinEvidence(t *testing.T) {
	h := 10 * time.Second // step hold with the defaults
	tests := []struct {
		name   string
		cfg    RampConfig
		script []rampScript
		want   []RampEvent
	}{
		{
			name: "no traffic holds past the hold, advances on time alone at MaxHold",
			script: []rampScript{
				{at: h, tick: true},
				{at: 3*h - time.Millisecond, tick: true},
				{at: 3 * h, tick: true},
				{at: 3 * h, tick: true},
			},
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(3 * h), From: 10, To: 25, Held: 3 * h, OnTimeAlone: true},
			},
		},
		{
			name: "a few successes are still thin",
			script: rampConcat(
				rampSteady(0, h, 3, rampOK),
				[]rampScript{{at: 2 * h, tick: true}, {at: 3 * h, tick: true}},
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(3 * h), From: 10, To: 25, Calls: 3, Successes: 3, Held: 3 * h, OnTimeAlone: true},
			},
		},
		{
			name: "MinCalls reached after the hold advances at once",
			script: rampConcat(
				rampSteady(0, h, 5, rampOK),
				rampSteady(h, h+5*time.Second, 5, rampOK),
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(h + 5*time.Second), From: 10, To: 25, Calls: 10, Successes: 10, Held: h + 5*time.Second},
			},
		},
		{
			name: "a failure among thin evidence waits for MinCalls",
			script: rampConcat(
				[]rampScript{{at: time.Second, o: rampFail}},
				rampSteady(time.Second, 2*time.Second, 2, rampOK),
				[]rampScript{{at: 3 * h, tick: true}, {at: time.Hour, tick: true}},
				rampSteady(time.Hour, time.Hour+7*time.Second, 7, rampOK),
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(time.Hour + 7*time.Second), From: 10, To: 25, Calls: 10, Successes: 9, Held: time.Hour + 7*time.Second},
			},
		},
		{
			name: "negative MaxHold never advances on time alone",
			cfg:  RampConfig{MaxHold: -1},
			script: []rampScript{
				{at: 3 * h, tick: true},
				{at: 24 * time.Hour, tick: true},
			},
			want: []RampEvent{{Kind: RampStarted, At: rampT0, To: 10}},
		},
		{
			name: "caller mistakes are not evidence",
			script: rampConcat(
				rampSteady(0, h, 20, Outcome{Class: messages.ErrorClass_bad_request}),
				[]rampScript{{at: 3 * h, tick: true}},
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(3 * h), From: 10, To: 25, Held: 3 * h, OnTimeAlone: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRamp(t, tt.cfg)
			rampCheckEvents(t, rampRun(r, tt.script), tt.want)
		})
	}
}

func TestRampNextDeadline(t *testing.T) {
	r := newTestRamp(t, RampConfig{})
	if _, ok := r.NextDeadline(); ok {
		t.Errorf("before Start: NextDeadline ok, want none")
	}
	r.Start(rampT0)
	check := func(when string, want time.Time, wantOK bool) {
		t.Helper()
		got, ok := r.NextDeadline()
		if ok != wantOK || !got.Equal(want) {
			t.Errorf("%s: NextDeadline = %v, %v; want %v, %v", when, got, ok, want, wantOK)
		}
	}
	check("no evidence", rampAt(30*time.Second), true)
	for i := range 10 {
		r.Observe(rampAt(time.Duration(i)*time.Second), rampOK)
	}
	check("10 successes", rampAt(10*time.Second), true)
	r.Tick(rampAt(10 * time.Second))
	check("next step, no evidence", rampAt(40*time.Second), true)
	r.Observe(rampAt(11*time.Second), rampFail)
	check("thin and failing", time.Time{}, false)
}

func TestRampRegression(t *testing.T) {
	h := 10 * time.Second
	tests := []struct {
		name   string
		script []rampScript
		want   []RampEvent
	}{
		{
			name: "two failures in the first ten regress as soon as certain",
			script: []rampScript{
				{at: 1 * time.Second, o: rampOK},
				{at: 2 * time.Second, o: rampFail},
				{at: 3 * time.Second, o: rampOK},
				{at: 4 * time.Second, o: rampFail},
				{at: 5 * time.Second, o: rampOK},
				{at: 3 * h, tick: true},
			},
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampRegressed, At: rampAt(4 * time.Second), From: 10, Calls: 4, Successes: 2, Held: 4 * time.Second},
			},
		},
		{
			name: "one failure in ten is at the floor and holds",
			script: rampConcat(
				[]rampScript{{at: time.Second, o: rampFail}},
				rampSteady(time.Second, h, 9, rampOK),
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(h), From: 10, To: 25, Calls: 10, Successes: 9, Held: h},
			},
		},
		{
			name: "a bad 50 % step regresses and asks to reopen",
			script: rampConcat(
				rampSteady(0, 2*h, 40, rampOK),
				rampSteady(2*h, 2*h+4*time.Second, 20, rampOK),
				rampSteady(2*h+4*time.Second, 2*h+5*time.Second, 3, rampFail),
				rampSteady(2*h+5*time.Second, 4*h, 40, rampOK),
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampAdvanced, At: rampAt(h), From: 10, To: 25, Calls: 20, Successes: 20, Held: h},
				{Kind: RampAdvanced, At: rampAt(2 * h), From: 25, To: 50, Calls: 20, Successes: 20, Held: h},
				// 20/22 = 0.909 holds; 20/23 = 0.870 does not.
				{Kind: RampRegressed, At: rampAt(2*h + 5*time.Second), From: 50, Calls: 23, Successes: 20, Held: 5 * time.Second},
			},
		},
		{
			// 8/9 is thin and under the floor: no advance is due. The next
			// failure makes ten calls after the hold: the rate is judged
			// (0.8) before the hold is.
			name: "regression wins over an advance due at the same time",
			script: rampConcat(
				rampSteady(0, 8*time.Second, 8, rampOK),
				[]rampScript{{at: 9 * time.Second, o: rampFail}, {at: h, tick: true}, {at: h + time.Second, o: rampFail}},
			),
			want: []RampEvent{
				{Kind: RampStarted, At: rampT0, To: 10},
				{Kind: RampRegressed, At: rampAt(h + time.Second), From: 10, Calls: 10, Successes: 8, Held: h + time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRamp(t, RampConfig{})
			rampCheckEvents(t, rampRun(r, tt.script), tt.want)
			if last := tt.want[len(tt.want)-1]; last.Kind == RampRegressed && r.Ramping() {
				t.Errorf("after a regression: still ramping at %d%%, want the ramp ended", r.Percent())
			}
		})
	}
}

func TestRampEventsOnce(t *testing.T) {
	r := newTestRamp(t, RampConfig{})
	r.Start(rampT0)
	for i := range 10 {
		r.Observe(rampAt(time.Duration(i)*time.Millisecond), rampOK)
	}
	at := rampAt(10 * time.Second)
	if _, ok := r.Tick(at); !ok {
		t.Fatalf("Tick at the hold: no event, want an advance")
	}
	for i := range 3 {
		if ev, ok := r.Tick(at); ok {
			t.Errorf("repeated Tick %d at the same time: got %+v, want no event", i, ev)
		}
	}
	r.Observe(at, rampFail)
	ev, ok := r.Observe(at, rampFail)
	if !ok || ev.Kind != RampRegressed {
		t.Fatalf("second failure: got %+v, %v; want a regression", ev, ok)
	}
	for i, d := range []time.Duration{0, time.Second, time.Hour} {
		if ev, ok := r.Observe(at.Add(d), rampFail); ok {
			t.Errorf("Observe %d after the regression: got %+v, want no event", i, ev)
		}
		if ev, ok := r.Tick(at.Add(d)); ok {
			t.Errorf("Tick %d after the regression: got %+v, want no event", i, ev)
		}
	}
}

func TestRampStopAndRestart(t *testing.T) {
	r := newTestRamp(t, RampConfig{})
	r.Start(rampT0)
	r.Tick(rampAt(30 * time.Second)) // to 25 % on time alone
	r.Stop()
	if r.Ramping() || r.Percent() != 100 {
		t.Errorf("after Stop: Ramping %v, Percent %d; want false, 100", r.Ramping(), r.Percent())
	}
	if ev, ok := r.Tick(rampAt(time.Hour)); ok {
		t.Errorf("Tick after Stop: got %+v, want no event", ev)
	}
	ev := r.Start(rampAt(time.Hour))
	if want := (RampEvent{Kind: RampStarted, At: rampAt(time.Hour), To: 10}); ev != want {
		t.Errorf("restart: got %+v, want %+v", ev, want)
	}
}

func TestRampSingleStepIsOff(t *testing.T) {
	r := newTestRamp(t, RampConfig{Steps: []int{100}})
	ev := r.Start(rampT0)
	if want := (RampEvent{Kind: RampCompleted, At: rampT0, To: 100}); ev != want {
		t.Errorf("Start: got %+v, want %+v", ev, want)
	}
	if r.Ramping() || !r.Admit(0.999) {
		t.Errorf("after Start: Ramping %v, Admit(0.999) %v; want false, true", r.Ramping(), r.Admit(0.999))
	}
}

// rampDraws returns n deterministic, evenly spread draws in [0, 1): the
// fractional parts of i x the golden ratio.
func rampDraws(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		_, xs[i] = math.Modf(float64(i+1) * math.Phi)
	}
	return xs
}

func TestRampAdmitShare(t *testing.T) {
	cfg := RampConfig{Steps: []int{1, 10, 25, 33, 50, 99, 100}, Over: 6 * time.Second, MaxHold: time.Second}
	r := newTestRamp(t, cfg)
	draws := rampDraws(10000)
	r.Start(rampT0)
	for i := 0; r.Ramping(); i++ {
		p := r.Percent()
		admitted := 0
		for _, x := range draws {
			if r.Admit(x) {
				admitted++
			}
		}
		got := float64(admitted) / float64(len(draws)) * 100
		if math.Abs(got-float64(p)) > 0.2 {
			t.Errorf("at %d%%: admitted %.2f%% of %d draws, want %d%% +-0.2", p, got, len(draws), p)
		}
		r.Tick(rampAt(time.Duration(i+1) * time.Second))
	}
	for _, x := range []float64{0, 0.5, math.Nextafter(1, 0)} {
		if !r.Admit(x) {
			t.Errorf("not ramping: Admit(%v) = false, want true", x)
		}
	}
}

func TestRampConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RampConfig
		wantErr string // "" for valid
	}{
		{"zero value", RampConfig{}, ""},
		{"custom", RampConfig{Steps: []int{5, 100}, Over: time.Minute, SuccessFloor: 1, MinCalls: 1, MaxHold: time.Minute}, ""},
		{"ramp off", RampConfig{Steps: []int{100}}, ""},
		{"step zero", RampConfig{Steps: []int{0, 100}}, "Steps[0] = 0"},
		{"step over 100", RampConfig{Steps: []int{50, 101}}, "Steps[1] = 101"},
		{"not increasing", RampConfig{Steps: []int{10, 10, 100}}, "Steps[1] = 10 after 10"},
		{"not ending at 100", RampConfig{Steps: []int{10, 50}}, "Steps ends at 50"},
		{"empty steps", RampConfig{Steps: []int{}}, "Steps is empty"},
		{"negative Over", RampConfig{Over: -time.Second}, "Over -1s"},
		{"floor above 1", RampConfig{SuccessFloor: 1.1}, "SuccessFloor 1.1"},
		{"negative floor", RampConfig{SuccessFloor: -0.1}, "SuccessFloor -0.1"},
		{"NaN floor", RampConfig{SuccessFloor: math.NaN()}, "SuccessFloor NaN"},
		{"negative MinCalls", RampConfig{MinCalls: -1}, "MinCalls -1"},
		{"MaxHold under the hold", RampConfig{MaxHold: 5 * time.Second}, "MaxHold 5s < step hold 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrRampConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want ErrRampConfig naming %q", err, tt.wantErr)
			}
			if _, nerr := NewRamp(tt.cfg); nerr == nil {
				t.Errorf("NewRamp accepted an invalid config")
			}
		})
	}
}

func TestRampEventString(t *testing.T) {
	tests := []struct {
		ev   RampEvent
		want string
	}{
		{RampEvent{Kind: RampStarted, To: 10}, "ramp started at 10%"},
		{RampEvent{Kind: RampAdvanced, From: 10, To: 25, Calls: 12, Successes: 12, Held: 10 * time.Second}, "ramp 10% -> 25% after 10s (12/12 ok)"},
		{RampEvent{Kind: RampCompleted, From: 50, To: 100, Held: 30 * time.Second, OnTimeAlone: true}, "ramp 50% -> 100% after 30s (0/0 ok), on time alone"},
		{RampEvent{Kind: RampRegressed, From: 25, Calls: 4, Successes: 2, Held: 3 * time.Second}, "ramp regressed at 25% after 3s (2/4 ok): reopen"},
	}
	for _, tt := range tests {
		if got := tt.ev.String(); got != tt.want {
			t.Errorf("%v event: String() = %q, want %q", tt.ev.Kind, got, tt.want)
		}
	}
}

func BenchmarkRampAdmit(b *testing.B) {
	r := newTestRamp(b, RampConfig{})
	r.Start(rampT0)
	draws := rampDraws(1024)
	admitted := 0
	i := 0
	for b.Loop() {
		if r.Admit(draws[i&1023]) {
			admitted++
		}
		i++
	}
	if admitted == 0 {
		b.Fatal("nothing admitted")
	}
}
