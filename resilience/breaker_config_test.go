package resilience

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBreakerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    BreakerConfig
		want string // a substring of the error; "" for valid
	}{
		{"zero", BreakerConfig{}, ""},
		{"every preset field set", breakerPresets["resilience4j"], ""},
		{"negative window size", BreakerConfig{WindowSize: -1}, "WindowSize is -1, want >= 0"},
		{"huge window size", BreakerConfig{WindowSize: 2_000_000}, "WindowSize is 2000000, want <= 1000000"},
		{"too many buckets", BreakerConfig{WindowBuckets: 1001}, "WindowBuckets is 1001, want <= 1000"},
		{"negative minimum", BreakerConfig{MinimumCalls: -5}, "MinimumCalls is -5, want >= 0"},
		{"negative consecutive", BreakerConfig{ConsecutiveFailures: -1}, "ConsecutiveFailures is -1"},
		{"too many permits", BreakerConfig{HalfOpenPermits: 5000}, "HalfOpenPermits is 5000, want <= 1000"},
		{"negative success threshold", BreakerConfig{SuccessThreshold: -1}, "SuccessThreshold is -1"},
		{"negative duration", BreakerConfig{OpenDuration: -time.Second}, "OpenDuration is -1s, want >= 0"},
		{"negative lease", BreakerConfig{PermitLease: -1}, "PermitLease is -1ns, want >= 0"},
		{"unknown window", BreakerConfig{Window: 7}, "Window is WindowKind(7)"},
		{"unknown growth", BreakerConfig{Growth: 3}, "Growth is 3"},
		{"failure rate above 1", BreakerConfig{FailureRate: 1.5}, "FailureRate is 1.5, want in (0, 1]"},
		{"negative slow rate", BreakerConfig{SlowRate: -0.1}, "SlowRate is -0.1"},
		{"slow rate without slow call", BreakerConfig{SlowRate: 0.5}, "SlowCall is 0, want SlowCall > 0"},
		{"multiplier below 1", BreakerConfig{Multiplier: 0.5}, "Multiplier is 0.5, want in [1, 1e6]"},
		{"jitter of 1", BreakerConfig{OpenJitter: 1}, "OpenJitter is 1, want in [0, 1)"},
		{"max below open", BreakerConfig{OpenDuration: time.Minute, MaxOpenDuration: time.Second}, "MaxOpenDuration is 1s, want >= OpenDuration (1m0s)"},
		{"buckets narrower than 1ms", BreakerConfig{Window: TimeWindow, WindowDuration: 5 * time.Millisecond}, "WindowDuration is 5ms, want >= WindowBuckets (10) x 1ms"},
		{"minimum above window", BreakerConfig{WindowSize: 10, MinimumCalls: 11}, "MinimumCalls is 11, want <= WindowSize (10)"},
		{"minimum above default window", BreakerConfig{Window: CountWindow, MinimumCalls: 101}, "want <= WindowSize (100)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, nerr := NewBreaker(tt.c, nil); (nerr == nil) != (err == nil) {
				t.Fatalf("NewBreaker error = %v, Validate error = %v, want both or neither", nerr, err)
			}
		})
	}
}

func TestBreakerConfigMerge(t *testing.T) {
	base, _ := Preset("resilience4j")
	got := base.Merge(BreakerConfig{
		WindowSize:          5,
		MinimumCalls:        5,
		SlowRate:            -1, // off
		ConsecutiveFailures: 3,
		Window:              NoWindow,
		OpenDuration:        time.Second,
	})
	want := base
	want.WindowSize, want.MinimumCalls, want.SlowRate = 5, 5, 0
	want.ConsecutiveFailures, want.Window, want.OpenDuration = 3, NoWindow, time.Second
	if got != want {
		t.Errorf("Merge:\n got %+v\nwant %+v", got, want)
	}
	if got := base.Merge(BreakerConfig{}); got != base {
		t.Errorf("Merge(zero) = %+v, want the base unchanged", got)
	}
	// A negative unset-kind field is not an "off" switch: it is kept, and
	// Validate names it.
	if err := base.Merge(BreakerConfig{OpenDuration: -time.Second}).Validate(); err == nil {
		t.Errorf("Merge(OpenDuration: -1s).Validate() = nil, want an error")
	}
}

func TestBreakerConfigDefaults(t *testing.T) {
	bip03 := breakerPresets["bip03"]
	got := BreakerConfig{}.withDefaults()
	want := bip03
	want.OpenJitter = 0 // zero means off, and is not filled
	if got != want {
		t.Errorf("BreakerConfig{}.withDefaults():\n got %+v\nwant bip03 without jitter %+v", got, want)
	}
	tests := []struct {
		name string
		c    BreakerConfig
		want WindowKind
	}{
		{"size keeps count", BreakerConfig{WindowSize: 7}, CountWindow},
		{"duration infers time", BreakerConfig{WindowDuration: time.Second}, TimeWindow},
		{"neither is bip03's count", BreakerConfig{ConsecutiveFailures: 2}, CountWindow},
		{"both is count", BreakerConfig{WindowSize: 7, WindowDuration: time.Second}, CountWindow},
	}
	for _, tt := range tests {
		if got := tt.c.withDefaults().Window; got != tt.want {
			t.Errorf("%s: Window = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := (BreakerConfig{FailureRate: 0.5}).withDefaults().ConsecutiveFailures; got != 0 {
		t.Errorf("with a failure rate set, ConsecutiveFailures = %d, want 0 (off)", got)
	}
	if got := (BreakerConfig{OpenDuration: time.Hour}).withDefaults().MaxOpenDuration; got != time.Hour {
		t.Errorf("OpenDuration 1h: MaxOpenDuration = %v, want 1h", got)
	}
}

func TestPreset(t *testing.T) {
	wantNames := []string{"bip03", "envoy", "gobreaker", "hystrix", "resilience4j"}
	if got := PresetNames(); !slices.Equal(got, wantNames) {
		t.Fatalf("PresetNames() = %v, want %v", got, wantNames)
	}
	for _, name := range wantNames {
		c, err := Preset(strings.ToUpper(name))
		if err != nil {
			t.Fatalf("Preset(%q): %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Preset(%q).Validate() = %v", name, err)
		}
		if c.withDefaults() != c {
			t.Errorf("Preset(%q) leaves fields to defaults:\n got %+v\nfilled %+v", name, c, c.withDefaults())
		}
	}
	if c, err := Preset(""); err != nil || c != breakerPresets["bip03"] {
		t.Errorf(`Preset("") = %+v, %v; want bip03`, c, err)
	}
	_, err := Preset("istio")
	if err == nil || !strings.Contains(err.Error(), `"istio"`) || !strings.Contains(err.Error(), strings.Join(wantNames, ", ")) {
		t.Errorf(`Preset("istio") error = %v, want one naming it and listing %v`, err, wantNames)
	}
}
