package messages

import (
	"math"
	"testing"
	"time"
)

func TestUnits(t *testing.T) {
	tests := []struct {
		name string
		got  int32
		want int32
	}{
		{"millis", Millis(1500 * time.Millisecond), 1500},
		{"millis negative", Millis(-time.Second), 0},
		{"millis huge", Millis(100 * 24 * time.Hour), math.MaxInt32},
		{"micros", Micros(1500 * time.Microsecond), 1500},
		{"micros huge", Micros(time.Hour), math.MaxInt32},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if got := Duration(250); got != 250*time.Millisecond {
		t.Errorf("Duration(250) = %v, want 250ms", got)
	}
}

func TestErrorClassStatus(t *testing.T) {
	tests := map[ErrorClass]int{
		ErrorClass_ok: 200, ErrorClass_bad_request: 400, ErrorClass_rate_limited: 429,
		ErrorClass_cancelled: 499, ErrorClass_server_error: 502, ErrorClass_all_failed: 503,
		ErrorClass_timeout: 504,
	}
	for class, want := range tests {
		if got := class.Status(); got != want {
			t.Errorf("%v.Status() = %d, want %d", class, got, want)
		}
	}
	if _, err := ParseErrorClass("nope"); err == nil {
		t.Error("ParseErrorClass(nope) gave no error")
	}
	if c, err := ParseErrorClass("stream_cut"); err != nil || c != ErrorClass_stream_cut {
		t.Errorf("ParseErrorClass(stream_cut) = %v, %v", c, err)
	}
}

func TestBreakerStateRefuses(t *testing.T) {
	for s := range BreakerState_name {
		st := BreakerState(s)
		want := st == BreakerState_open || st == BreakerState_forced_open || st == BreakerState_half_open
		if got := st.Refuses(); got != want {
			t.Errorf("%v.Refuses() = %v, want %v", st, got, want)
		}
	}
}
